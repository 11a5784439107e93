import fs from 'node:fs';
import { KeynodeError, fromSystemError } from '../errors.js';
import type { OutputOptions } from './output.js';

/** Options every command accepts (defined once on the program). */
export interface GlobalOptions extends OutputOptions {
  nodePath?: string;
  passwordFile?: string;
  lockTimeout?: string;
}

/**
 * Read a secret from a file: its exact bytes, less one trailing newline (\n or \r\n, as editors
 * add it). Like ssh with a private key, a file that other users may read or write is refused.
 */
export function readSecretFile(file: string, what: string): Buffer {
  let bytes: Buffer;
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const stat = fs.fstatSync(fd);
    // Only regular files: a pipe (`--password-file <(pass show x)`) is private to its processes.
    if (stat.isFile() && (stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw new KeynodeError('ERR_INVALID_ARGUMENT', `the ${what} file ${file} is accessible by other users (mode ${mode}); run: chmod 600 ${file}`, { file });
    }
    bytes = fs.readFileSync(fd);
  } catch (error) {
    throw fromSystemError(error, `reading the ${what} file ${file}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  const newline = bytes.at(-1) === 0x0a ? (bytes.at(-2) === 0x0d ? 2 : 1) : 0;
  return bytes.subarray(0, bytes.length - newline);
}

/**
 * The node password as bytes: --password-file (its exact bytes, less one newline), else
 * KEYNODE_PASSWORD, else a hidden prompt on the terminal (asked twice when `confirm`), both as
 * UTF-8. Explicit sources win so scripts never block on a prompt. Bytes all the way to argon2:
 * decoding a file as text would give two binary files one password. The caller zeroes it.
 */
export async function readPassword(options: GlobalOptions, purpose: { confirm?: boolean; label?: string } = {}): Promise<Buffer> {
  if (options.passwordFile) return readSecretFile(options.passwordFile, 'password');
  const fromEnv = process.env.KEYNODE_PASSWORD;
  if (fromEnv !== undefined && fromEnv !== '') return Buffer.from(fromEnv, 'utf8');
  // The terminal code loads only when no explicit source is given (the fast path bundles this file).
  const { canPrompt, promptLine, promptNewSecret } = await import('./prompt.js');
  if (canPrompt()) {
    const label = purpose.label ?? 'Node password';
    return Buffer.from(purpose.confirm ? await promptNewSecret(label) : await promptLine(`${label}: `, { hidden: true }), 'utf8');
  }
  throw new KeynodeError('ERR_PASSWORD_REQUIRED', 'a password is needed: use --password-file FILE or KEYNODE_PASSWORD, or run in a terminal');
}
