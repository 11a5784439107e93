import fs from 'node:fs';
import type { Command } from 'commander';
import { KeynodeError, fromSystemError } from '../errors.js';
import type { KeynodeClient } from '../client/KeynodeClient.js';
import { exposedDirectoryMode, resolveNodePath } from '../node/nodePath.js';
import type { Argon2idParams } from '../crypto/kdf.js';
import { canPrompt, promptLine, promptNewSecret } from './prompt.js';
import type { OutputOptions } from './output.js';

/** Options every command accepts (defined once on the program). */
export interface GlobalOptions extends OutputOptions {
  nodePath?: string;
  passwordFile?: string;
  lockTimeout?: string;
}

export function globalOptions(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

let warnedExposedNode = false;

/** The node path; warns when other users may enter it unless the command is about to make it 0700 itself. */
export function nodePathOf(options: GlobalOptions, { warnIfExposed = true }: { warnIfExposed?: boolean } = {}): string {
  const nodePath = resolveNodePath(options.nodePath);
  if (warnIfExposed) warnIfNodeExposed(nodePath);
  return nodePath;
}

/**
 * Warn (once a process) when other users may enter the node directory. Straight to stderr, even
 * with --json: a security warning is not output to silence.
 */
function warnIfNodeExposed(nodePath: string): void {
  if (warnedExposedNode) return;
  const mode = exposedDirectoryMode(nodePath);
  if (mode === undefined) return;
  warnedExposedNode = true;
  process.stderr.write(`warning: node directory ${nodePath} is accessible by other users (mode ${mode.toString(8).padStart(4, '0')}); run: chmod 700 ${nodePath}\n`);
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
  if (canPrompt()) {
    const label = purpose.label ?? 'Node password';
    return Buffer.from(purpose.confirm ? await promptNewSecret(label) : await promptLine(`${label}: `, { hidden: true }), 'utf8');
  }
  throw new KeynodeError('ERR_PASSWORD_REQUIRED', 'a password is needed: use --password-file FILE or KEYNODE_PASSWORD, or run in a terminal');
}

export function lockWaitOf(options: GlobalOptions): number | undefined {
  if (options.lockTimeout === undefined) return undefined;
  const ms = Number(options.lockTimeout);
  if (!Number.isFinite(ms) || ms < 0) throw new KeynodeError('ERR_USAGE', '--lock-timeout must be a number of milliseconds');
  return ms;
}

/**
 * Reach the node (through its agent when one runs, else in this process), run `work`, and
 * close the connection or the node whatever happens. The password is read only if needed.
 */
export async function withClient<T>(options: GlobalOptions, work: (client: KeynodeClient) => Promise<T>): Promise<T> {
  const { connectClient } = await import('../client/KeynodeClient.js');
  const client = await connectClient({ nodePath: nodePathOf(options), password: () => readPassword(options), lockWaitMs: lockWaitOf(options) });
  try {
    return await work(client);
  } finally {
    client.close();
  }
}

/**
 * Variables that carry keynode credentials (KEYNODE_PASSWORD, KEYNODE_NEW_PASSWORD,
 * KEYNODE_RECOVERY_PHRASE, and any later KEYNODE_*PASSWORD/PHRASE/TOKEN/SECRET/KEY): never
 * handed to a child process. Every program keynode starts gets childEnv().
 */
const CREDENTIAL_ENV = /^KEYNODE_\w*(PASSWORD|PHRASE|TOKEN|SECRET|KEY)\w*$/i;

/** This process's environment (plus `extra`) without keynode's credentials. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const name of Object.keys(env)) if (CREDENTIAL_ENV.test(name)) delete env[name];
  return env;
}

/** Decode a base64 value from the API. */
export function fromBase64(value: string): Buffer {
  return Buffer.from(value, 'base64');
}

/** argon2id options accepted by init, recover and password. */
export function kdfOptionsOf(options: { kdfMemory?: string; kdfIterations?: string }): Partial<Argon2idParams> {
  const kdf: Partial<Argon2idParams> = {};
  if (options.kdfMemory !== undefined) kdf.memoryKib = parseInteger(options.kdfMemory, '--kdf-memory');
  if (options.kdfIterations !== undefined) kdf.iterations = parseInteger(options.kdfIterations, '--kdf-iterations');
  return kdf;
}

export function parseInteger(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new KeynodeError('ERR_USAGE', `${flag} takes a whole number, got "${value}"`);
  return Number(value);
}

export function addKdfOptions(command: Command): Command {
  return command
    .option('--kdf-memory <KiB>', 'argon2id memory in KiB (default 65536)')
    .option('--kdf-iterations <n>', 'argon2id iterations (default 3)');
}
