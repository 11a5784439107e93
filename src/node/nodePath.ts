import os from 'node:os';
import path from 'node:path';

/** The node path: explicit option, else KEYNODE_PATH, else $XDG_DATA_HOME/keynode, else ~/.local/share/keynode. */
export function resolveNodePath(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return path.resolve(explicit);
  if (env.KEYNODE_PATH) return path.resolve(env.KEYNODE_PATH);
  if (env.XDG_DATA_HOME) return path.join(path.resolve(env.XDG_DATA_HOME), 'keynode');
  return path.join(os.homedir(), '.local', 'share', 'keynode');
}
