import fs from 'node:fs';
import type { Command } from 'commander';
import { KeynodeError, fromSystemError } from '../errors.js';
import type { KeynodeClient } from '../client/KeynodeClient.js';
import { resolveNodePath } from '../node/nodePath.js';
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

export function nodePathOf(options: GlobalOptions): string {
  return resolveNodePath(options.nodePath);
}

/** Read a secret from a file: exact bytes, less one trailing newline (as editors add it). */
export function readSecretFile(file: string, what: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw fromSystemError(error, `reading the ${what} file ${file}`);
  }
  return text.replace(/\r?\n$/, '');
}

/**
 * The node password: --password-file, else KEYNODE_PASSWORD, else a hidden prompt on the
 * terminal (asked twice when `confirm`). Explicit sources win so scripts never block on a prompt.
 */
export async function readPassword(options: GlobalOptions, purpose: { confirm?: boolean; label?: string } = {}): Promise<string> {
  if (options.passwordFile) return readSecretFile(options.passwordFile, 'password');
  const fromEnv = process.env.KEYNODE_PASSWORD;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (canPrompt()) {
    const label = purpose.label ?? 'Node password';
    return purpose.confirm ? promptNewSecret(label) : promptLine(`${label}: `, { hidden: true });
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

/** Variables that carry keynode credentials: never handed to a child process. */
const CREDENTIAL_ENV = ['KEYNODE_PASSWORD', 'KEYNODE_NEW_PASSWORD', 'KEYNODE_RECOVERY_PHRASE'];

/** This process's environment (plus `extra`) without keynode's credentials. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const name of CREDENTIAL_ENV) delete env[name];
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
