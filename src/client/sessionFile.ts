import fs from 'node:fs';
import { count, object, optional, string } from '../codec.js';
import { sessionFile } from '../ipc/paths.js';
import { writeFileAtomic } from '../storage/files.js';

/** The session token of a node's agent, kept 0600 in the user's runtime directory. */
export interface StoredSession {
  token: string;
  expiresAt: number;
  issuedAt: number;
}

// issuedAt is optional: files written before it existed still read.
const sessionRecord = object({ token: string, expiresAt: count, issuedAt: optional(count) });

/** The stored session, or null when there is none or it is unreadable (the client then signs in again). */
export function readSession(nodePath: string): StoredSession | null {
  try {
    const value = sessionRecord(JSON.parse(fs.readFileSync(sessionFile(nodePath, { create: false }), 'utf8')), 'session');
    return { token: value.token, expiresAt: value.expiresAt, issuedAt: value.issuedAt ?? Date.now() };
  } catch {
    return null;
  }
}

export function writeSession(nodePath: string, session: { token: string; expiresAt: number }): void {
  const stored: StoredSession = { token: session.token, expiresAt: session.expiresAt, issuedAt: Date.now() };
  writeFileAtomic(sessionFile(nodePath), Buffer.from(JSON.stringify(stored)));
}

export function removeSession(nodePath: string): void {
  try {
    fs.rmSync(sessionFile(nodePath, { create: false }), { force: true });
  } catch {
    /* nothing to remove */
  }
}
