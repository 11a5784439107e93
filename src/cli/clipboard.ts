import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KeynodeError } from '../errors.js';
import { childEnv } from './context.js';

/**
 * Copy to the system clipboard with the first tool that fits the session (wl-copy on Wayland,
 * xclip or xsel on X11, pbcopy on macOS), and clear it after a delay, unless something else has
 * been copied since. The clearing process gets only a keyed hash of the value, through a pipe.
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

/**
 * The clearing helper, as a constant program: its command line is the same for every value, so
 * `ps` shows nothing about the secret. What it needs arrives on stdin: the tools, the delay and
 * an HMAC of the value under a fresh random key (never the value, nor an unkeyed hash anyone
 * could test guesses against).
 */
const CLEAR_HELPER = `
  const { spawnSync } = require('node:child_process');
  const crypto = require('node:crypto');
  let input = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => (input += chunk));
  process.stdin.on('end', () => {
    const { paste, copy, seconds, key, mac } = JSON.parse(input);
    setTimeout(() => {
      const now = spawnSync(paste[0], paste.slice(1));
      if (now.status !== 0) return;
      const seen = crypto.createHmac('sha256', Buffer.from(key, 'hex')).update(now.stdout).digest();
      if (crypto.timingSafeEqual(seen, Buffer.from(mac, 'hex'))) spawnSync(copy[0], copy.slice(1), { input: '' });
    }, seconds * 1000);
  });`;

function clearAfterSeconds(): number {
  const seconds = Number(process.env.KEYNODE_CLIPBOARD_SECONDS ?? CLIPBOARD_CLEAR_SECONDS);
  return Number.isFinite(seconds) && seconds > 0 ? seconds : CLIPBOARD_CLEAR_SECONDS;
}

export function copyToClipboard(value: Buffer): { clearAfterSeconds: number } {
  const tool = clipboardTool();
  if (!tool) {
    throw new KeynodeError('ERR_NOT_SUPPORTED', 'no clipboard tool for this session (wl-copy on Wayland, xclip or xsel on X11, pbcopy on macOS)');
  }
  // xclip and wl-copy stay behind to serve the selection: they must not inherit credentials.
  const copied = spawnSync(tool.copy[0]!, tool.copy.slice(1), { input: value, stdio: ['pipe', 'ignore', 'ignore'], env: childEnv() });
  if (copied.status !== 0) throw new KeynodeError('ERR_IO', `${tool.copy[0]!} failed to copy (exit ${String(copied.status)})`);
  const seconds = clearAfterSeconds();
  const key = crypto.randomBytes(32);
  const mac = crypto.createHmac('sha256', key).update(value).digest();
  // A detached helper clears the clipboard later, if it still holds this value.
  const helper = spawn(process.execPath, ['-e', CLEAR_HELPER], { detached: true, stdio: ['pipe', 'ignore', 'ignore'], env: childEnv(), cwd: '/' });
  helper.stdin.on('error', () => {}); // a helper that died at once just leaves the clipboard as it is
  helper.stdin.end(JSON.stringify({ paste: tool.paste, copy: tool.copy, seconds, key: key.toString('hex'), mac: mac.toString('hex') }));
  helper.unref();
  return { clearAfterSeconds: seconds };
}
