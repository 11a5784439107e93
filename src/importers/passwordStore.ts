import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KeynodeError, isKeynodeError } from '../errors.js';
import { normalizeSecretPath } from '../vaults/paths.js';

/**
 * Read a password-store (pass) into memory: every `*.gpg` file under the store, decrypted by
 * the user's own gpg (and gpg-agent), keeping its path without `.gpg`. Everything else is
 * reported as skipped, with the reason; nothing decrypted touches the disk.
 */
export interface PassImport {
  secrets: Array<{ path: string; value: Buffer }>;
  skipped: Array<{ path: string; reason: string }>;
}

export function defaultPasswordStore(): string {
  return process.env.PASSWORD_STORE_DIR || path.join(os.homedir(), '.password-store');
}

/** How long one gpg may take (a passphrase prompt through gpg-agent included) before it is stopped. */
export const GPG_DECRYPT_TIMEOUT_MS = 120_000;

/**
 * Decrypt one file with the user's gpg. The path is absolute and follows `--`, so no file name
 * can pass as an option; stdin is closed, so a gpg that wants input fails instead of waiting.
 */
function decrypt(file: string, options: { timeoutMs: number; env: NodeJS.ProcessEnv }): Promise<Buffer> {
  const { timeoutMs, env } = options;
  return new Promise((resolve, reject) => {
    const child = execFile(
      'gpg',
      ['--quiet', '--batch', '--yes', '--decrypt', '--', path.resolve(file)],
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs, killSignal: 'SIGKILL', env },
      (error, stdout, stderr) => {
        if (!error) resolve(stdout);
        else if (error.code === 'ENOENT')
          reject(new KeynodeError('ERR_NOT_SUPPORTED', 'gpg was not found on PATH; pass stores are decrypted with your own gpg'));
        else if (error.killed) reject(new Error(`gpg did not finish within ${Math.round(timeoutMs / 1000)} s`));
        else reject(new Error((stderr.toString().trim().split('\n').pop() ?? '') || error.message));
      },
    );
    child.stdin?.end();
  });
}

/**
 * `env` is gpg's environment: the caller passes one without its own credentials (the CLI's
 * childEnv()), since gpg and the gpg-agent it may start would otherwise inherit them.
 */
export async function readPasswordStore(storeDir: string, options: { env: NodeJS.ProcessEnv; concurrency?: number; timeoutMs?: number }): Promise<PassImport> {
  storeDir = path.resolve(storeDir);
  if (!fs.existsSync(storeDir) || !fs.statSync(storeDir).isDirectory()) {
    throw new KeynodeError('ERR_INVALID_ARGUMENT', `no password store at ${storeDir} (use --store DIR or PASSWORD_STORE_DIR)`);
  }
  const files: string[] = [];
  const skipped: PassImport['skipped'] = [];
  const walk = (dir: string, relative: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const rel = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (entry.name === '.git' || entry.name === '.extensions') skipped.push({ path: rel, reason: 'pass metadata directory' });
        else walk(path.join(dir, entry.name), rel);
      } else if (entry.name === '.gpg-id') {
        continue; // pass's recipient list, not a secret
      } else if (!entry.isFile() || !entry.name.endsWith('.gpg')) {
        skipped.push({ path: rel, reason: 'not a .gpg file' });
      } else {
        files.push(rel);
      }
    }
  };
  walk(storeDir, '');
  const secrets: PassImport['secrets'] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < files.length; i = next++) {
      const rel = files[i]!;
      let secretPath: string;
      try {
        secretPath = normalizeSecretPath(rel.slice(0, -'.gpg'.length));
      } catch (error) {
        skipped.push({ path: rel, reason: isKeynodeError(error) ? error.message : String(error) });
        continue;
      }
      try {
        secrets.push({
          path: secretPath,
          value: await decrypt(path.join(storeDir, rel), { timeoutMs: options.timeoutMs ?? GPG_DECRYPT_TIMEOUT_MS, env: options.env }),
        });
      } catch (error) {
        if (isKeynodeError(error)) throw error; // no gpg at all: nothing to report per file
        skipped.push({ path: rel, reason: `gpg could not decrypt it: ${(error as Error).message}` });
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  secrets.sort((a, b) => (a.path < b.path ? -1 : 1));
  skipped.sort((a, b) => (a.path < b.path ? -1 : 1));
  return { secrets, skipped };
}
