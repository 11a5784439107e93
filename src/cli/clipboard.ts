import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KeynodeError } from '../errors.js';

/**
 * Copy to the system clipboard with the first tool that fits the session (wl-copy on Wayland,
 * xclip or xsel on X11, pbcopy on macOS), and clear it after a delay, unless something else has
 * been copied since. The clearing process gets only a hash of the value, never the value.
 */
export const CLIPBOARD_CLEAR_SECONDS = 45;

interface Tool {
  copy: string[];
  paste: string[];
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir, command), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function clipboardTool(): Tool | null {
  if (process.env.WAYLAND_DISPLAY && onPath('wl-copy') && onPath('wl-paste')) return { copy: ['wl-copy'], paste: ['wl-paste', '--no-newline'] };
  if (process.env.DISPLAY && onPath('xclip')) return { copy: ['xclip', '-selection', 'clipboard'], paste: ['xclip', '-selection', 'clipboard', '-o'] };
  if (process.env.DISPLAY && onPath('xsel')) return { copy: ['xsel', '--clipboard', '--input'], paste: ['xsel', '--clipboard', '--output'] };
  if (process.platform === 'darwin' && onPath('pbcopy')) return { copy: ['pbcopy'], paste: ['pbpaste'] };
  return null;
}

export function copyToClipboard(value: Buffer): { clearAfterSeconds: number } {
  const tool = clipboardTool();
  if (!tool) {
    throw new KeynodeError('ERR_NOT_SUPPORTED', 'no clipboard tool for this session (wl-copy on Wayland, xclip or xsel on X11, pbcopy on macOS)');
  }
  const copied = spawnSync(tool.copy[0]!, tool.copy.slice(1), { input: value, stdio: ['pipe', 'ignore', 'ignore'] });
  if (copied.status !== 0) throw new KeynodeError('ERR_IO', `${tool.copy[0]!} failed to copy (exit ${String(copied.status)})`);
  const seconds = Number(process.env.KEYNODE_CLIPBOARD_SECONDS ?? CLIPBOARD_CLEAR_SECONDS);
  const hash = crypto.createHash('sha256').update(value).digest('hex');
  // A detached helper clears the clipboard later, if it still holds this value.
  const script = `
    const { spawnSync } = require('node:child_process');
    const crypto = require('node:crypto');
    const [paste, copy, seconds, hash] = JSON.parse(process.argv[1]);
    setTimeout(() => {
      const now = spawnSync(paste[0], paste.slice(1));
      if (now.status === 0 && crypto.createHash('sha256').update(now.stdout).digest('hex') === hash) {
        spawnSync(copy[0], copy.slice(1), { input: '' });
      }
    }, seconds * 1000);`;
  const helper = spawn(process.execPath, ['-e', script, JSON.stringify([tool.paste, tool.copy, seconds, hash])], { detached: true, stdio: 'ignore' });
  helper.unref();
  return { clearAfterSeconds: seconds };
}
