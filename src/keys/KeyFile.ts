import fs from 'node:fs';
import path from 'node:path';
import { aeadKey, open, seal } from '../crypto/aead.js';
import { argon2id, hkdf, type Argon2idParams } from '../crypto/kdf.js';
import { sha256 } from '../crypto/hash.js';
import { constantTimeEqual, hmacSha256 } from '../crypto/mac.js';
import { randomBytes } from '../crypto/random.js';
import { KeynodeError, fromSystemError } from '../errors.js';
import { KDF_MIN_ITERATIONS, KDF_MIN_MEMORY_KIB } from '../constants.js';
import { writeFileAtomic } from '../storage/files.js';

/**
 * keynode.key: the node's master secret wrapped by a key derived from the password with
 * argon2id. Changing the password rewrites only this file; no data is re-encrypted.
 *
 * Fields (JSON, all binary as base64): format, kdf {algorithm, memoryKib, iterations,
 * parallelism, salt}, wrapped (AES-256-GCM of the master secret, the header as associated
 * data), phraseCheck (HMAC proving a recovery phrase belongs to this node without revealing
 * anything), checksum (SHA-256 of the rest, to tell accidental damage from a wrong password).
 */
export const KEY_FILE = 'keynode.key';
const FORMAT = 'keynode-key/1';

interface KeyFileContents {
  format: string;
  kdf: { algorithm: 'argon2id'; memoryKib: number; iterations: number; parallelism: number; salt: string };
  wrapped: string;
  phraseCheck: string;
}

function phraseCheckOf(masterSecret: Uint8Array): string {
  return hmacSha256(hkdf(masterSecret, 'keynode/phrase-check'), Buffer.from('keynode phrase check')).toString('base64');
}

function headerBytes(contents: Pick<KeyFileContents, 'format' | 'kdf'>): Buffer {
  return Buffer.from(JSON.stringify({ format: contents.format, kdf: contents.kdf }));
}

function serialize(contents: KeyFileContents): Buffer {
  const body = JSON.stringify(contents);
  return Buffer.from(JSON.stringify({ ...contents, checksum: sha256(Buffer.from(body)).toString('base64') }, null, 2) + '\n');
}

function parse(file: string, bytes: Buffer): KeyFileContents {
  const damaged = () => new KeynodeError('ERR_INTEGRITY', `key file ${file} is damaged`, { file });
  let value: KeyFileContents & { checksum?: string };
  try {
    value = JSON.parse(bytes.toString('utf8')) as KeyFileContents & { checksum?: string };
  } catch {
    throw damaged();
  }
  const { checksum, ...contents } = value;
  if (typeof checksum !== 'string' || !constantTimeEqual(Buffer.from(checksum, 'base64'), sha256(Buffer.from(JSON.stringify(contents))))) {
    throw damaged();
  }
  if (contents.format !== FORMAT) {
    throw new KeynodeError('ERR_NOT_SUPPORTED', `key file ${file} has unknown format ${String(contents.format)}`);
  }
  return contents;
}

export function validateKdfParams(params: Argon2idParams): void {
  if (!Number.isInteger(params.memoryKib) || params.memoryKib < KDF_MIN_MEMORY_KIB || params.memoryKib > 4 * 1024 * 1024) {
    throw new KeynodeError('ERR_INVALID_ARGUMENT', `argon2id memory must be ${KDF_MIN_MEMORY_KIB}..4194304 KiB`);
  }
  if (!Number.isInteger(params.iterations) || params.iterations < KDF_MIN_ITERATIONS || params.iterations > 100) {
    throw new KeynodeError('ERR_INVALID_ARGUMENT', 'argon2id iterations must be 1..100');
  }
  if (!Number.isInteger(params.parallelism) || params.parallelism < 1 || params.parallelism > 16) {
    throw new KeynodeError('ERR_INVALID_ARGUMENT', 'argon2id parallelism must be 1..16');
  }
}

async function wrap(masterSecret: Uint8Array, password: Uint8Array, params: Argon2idParams): Promise<KeyFileContents> {
  validateKdfParams(params);
  const salt = randomBytes(16);
  const header = { format: FORMAT, kdf: { algorithm: 'argon2id' as const, ...params, salt: salt.toString('base64') } };
  const kek = await argon2id(password, salt, params);
  const wrapped = seal(aeadKey(kek), masterSecret, headerBytes(header));
  kek.fill(0);
  return { ...header, wrapped: wrapped.toString('base64'), phraseCheck: phraseCheckOf(masterSecret) };
}

export function keyFilePath(nodeDir: string): string {
  return path.join(nodeDir, KEY_FILE);
}

export function keyFileExists(nodeDir: string): boolean {
  return fs.existsSync(keyFilePath(nodeDir));
}

function readKeyFile(nodeDir: string): KeyFileContents {
  const file = keyFilePath(nodeDir);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new KeynodeError('ERR_NODE_NOT_FOUND', `no keynode node at ${nodeDir} (run "keynode init")`, { nodeDir });
    }
    throw fromSystemError(error, `reading ${file}`);
  }
  return parse(file, bytes);
}

/** Write a new key file for `masterSecret` (replacing any existing one atomically). */
export async function writeKeyFile(nodeDir: string, masterSecret: Uint8Array, password: Uint8Array, params: Argon2idParams): Promise<void> {
  writeFileAtomic(keyFilePath(nodeDir), serialize(await wrap(masterSecret, password, params)));
}

/** Unwrap the master secret; ERR_WRONG_PASSWORD if the password does not open it. */
export async function unlockKeyFile(nodeDir: string, password: Uint8Array): Promise<Buffer> {
  const contents = readKeyFile(nodeDir);
  const { salt, algorithm: _algorithm, ...params } = contents.kdf;
  const kek = await argon2id(password, Buffer.from(salt, 'base64'), params);
  const master = open(aeadKey(kek), Buffer.from(contents.wrapped, 'base64'), headerBytes(contents));
  kek.fill(0);
  if (!master) throw new KeynodeError('ERR_WRONG_PASSWORD', 'wrong password');
  return master;
}

/** The argon2id parameters a node's key file uses. */
export function keyFileKdfParams(nodeDir: string): Argon2idParams {
  const { memoryKib, iterations, parallelism } = readKeyFile(nodeDir).kdf;
  return { memoryKib, iterations, parallelism };
}

/** Whether a master secret (from a recovery phrase) is the one this node's key file wraps. */
export function phraseMatchesKeyFile(nodeDir: string, masterSecret: Uint8Array): boolean {
  const contents = readKeyFile(nodeDir);
  return constantTimeEqual(Buffer.from(contents.phraseCheck, 'base64'), Buffer.from(phraseCheckOf(masterSecret), 'base64'));
}
