import fs from 'node:fs';
import { sessionFile } from '../agent/paths.js';
import { writeFileAtomic } from '../storage/files.js';

/** The session token of a node's agent, kept 0600 in the user's runtime directory. */
export interface StoredSession {
  token: string;
  expiresAt: number;
  issuedAt: number;
}

export function readSession(nodePath: string): StoredSession | null {
  try {
    const value = JSON.parse(fs.readFileSync(sessionFile(nodePath, { create: false }), 'utf8')) as Partial<StoredSession>;
    if (typeof value.token !== 'string' || typeof value.expiresAt !== 'number') return null;
    return { token: value.token, expiresAt: value.expiresAt, issuedAt: value.issuedAt ?? Date.now() };
  } catch {
    return null;
  }
}

export function writeSession(nodePath: string, session: { token: string; expiresAt: number }): void {
  const stored: StoredSession = { ...session, issuedAt: Date.now() };
  writeFileAtomic(sessionFile(nodePath), Buffer.from(JSON.stringify(stored)));
}

export function removeSession(nodePath: string): void {
  try {
    fs.rmSync(sessionFile(nodePath, { create: false }), { force: true });
  } catch {
    /* nothing to remove */
  }
}
