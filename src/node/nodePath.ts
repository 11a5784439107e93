import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The node path: explicit option, else KEYNODE_PATH, else $XDG_DATA_HOME/keynode, else ~/.local/share/keynode. */
export function resolveNodePath(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return path.resolve(explicit);
  if (env.KEYNODE_PATH) return path.resolve(env.KEYNODE_PATH);
  if (env.XDG_DATA_HOME) return path.join(path.resolve(env.XDG_DATA_HOME), 'keynode');
  return path.join(os.homedir(), '.local', 'share', 'keynode');
}

/** The mode of a directory that group or others may access (read, write or enter), else undefined. */
export function exposedDirectoryMode(dir: string): number | undefined {
  let mode: number;
  try {
    mode = fs.statSync(dir).mode & 0o777;
  } catch {
    return undefined; // not made yet (init makes it 0700) or not reachable: reported where it is used
  }
  return (mode & 0o077) !== 0 ? mode : undefined;
}
