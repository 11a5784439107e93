import type { Command } from 'commander';
import { KeynodeError } from '../errors.js';
import type { KeynodeClient } from '../client/KeynodeClient.js';
import { exposedDirectoryMode, resolveNodePath } from '../node/nodePath.js';
import type { Argon2idParams } from '../crypto/kdf.js';
import { readPassword, type GlobalOptions } from './credentials.js';

// Where the password comes from lives apart (credentials.ts): the bundled fast path needs it without the rest.
export { readPassword, readSecretFile, type GlobalOptions } from './credentials.js';

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
  process.stderr.write(
    `warning: node directory ${nodePath} is accessible by other users (mode ${mode.toString(8).padStart(4, '0')}); run: chmod 700 ${nodePath}\n`,
  );
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
  return command.option('--kdf-memory <KiB>', 'argon2id memory in KiB (default 65536)').option('--kdf-iterations <n>', 'argon2id iterations (default 3)');
}
