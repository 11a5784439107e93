import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { KeynodeError } from '../errors.js';

/** Where an agent and its clients meet, derived from the node path alone. */
export const SOCKET_FILE = 'agent.sock';
/** Unix socket paths are limited to ~107 bytes; longer ones move to the runtime directory. */
const MAX_SOCKET_PATH_BYTES = 100;

function nodeKey(nodePath: string): string {
  let real = nodePath;
  try {
    real = fs.realpathSync(nodePath);
  } catch {
    /* not there yet */
  }
  // The path itself names the files (base64url), hashed only when too long for a file name.
  const encoded = Buffer.from(real).toString('base64url');
  if (encoded.length <= 150) return encoded;
  // node:crypto costs a few ms to load; only long paths need it, so it loads only then.
  const { createHash } = createRequire('file:///')('node:crypto') as typeof import('node:crypto');
  return createHash('sha256').update(real).digest('hex').slice(0, 32);
}

/**
 * The user's private runtime directory for keynode: $XDG_RUNTIME_DIR/keynode, else
 * /tmp/keynode-UID. Created 0700; refused if another user owns it or others can enter it.
 */
export function runtimeDir(options: { create?: boolean } = { create: true }): string {
  const base = process.env.XDG_RUNTIME_DIR;
  const dir = base ? path.join(base, 'keynode') : path.join(os.tmpdir(), `keynode-${process.getuid?.() ?? 'user'}`);
  if (!options.create && !fs.existsSync(dir)) return dir;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = fs.lstatSync(dir);
  if (!stat.isDirectory() || (process.getuid && stat.uid !== process.getuid()) || (stat.mode & 0o077) !== 0) {
    throw new KeynodeError('ERR_IO', `runtime directory ${dir} is not private to this user (want a directory with mode 0700)`);
  }
  return dir;
}

export function socketPath(nodePath: string): string {
  const inNode = path.join(nodePath, SOCKET_FILE);
  if (Buffer.byteLength(inNode) <= MAX_SOCKET_PATH_BYTES) return inNode;
  return path.join(runtimeDir(), `agent-${nodeKey(nodePath)}.sock`);
}

/** The session file's path; the runtime directory is created only when `create` (to write it). */
export function sessionFile(nodePath: string, options: { create?: boolean } = { create: true }): string {
  return path.join(runtimeDir(options), `session-${nodeKey(nodePath)}.json`);
}

export function agentLogFile(nodePath: string): string {
  return path.join(runtimeDir(), `agent-${nodeKey(nodePath)}.log`);
}
