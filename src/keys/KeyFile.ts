import fs from 'node:fs';
import path from 'node:path';
import { AEAD_OVERHEAD_BYTES, aeadKey, open, seal } from '../crypto/aead.js';
import { argon2id, hkdf, type Argon2idParams } from '../crypto/kdf.js';
import { sha256 } from '../crypto/hash.js';
import { constantTimeEqual, hmacSha256 } from '../crypto/mac.js';
import { randomBytes } from '../crypto/random.js';
import { KeynodeError, fromSystemError } from '../errors.js';
import { KDF_MAX_ITERATIONS, KDF_MAX_MEMORY_KIB, KDF_MAX_PARALLELISM, KDF_MIN_ITERATIONS, KDF_MIN_MEMORY_KIB } from '../constants.js';
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
const SALT_BYTES = 16;
const MASTER_SECRET_BYTES = 32;
const PHRASE_CHECK_BYTES = 32;
/** A key file is ~400 bytes; anything far larger is not one (and is not read into memory). */
const KEY_FILE_MAX_BYTES = 64 * 1024;

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

/** Why `params` are outside what keynode writes and reads, or null when they are fine. */
function kdfParamsProblem(params: Argon2idParams): string | null {
  const { memoryKib, iterations, parallelism } = params;
  if (!Number.isSafeInteger(memoryKib) || memoryKib < KDF_MIN_MEMORY_KIB || memoryKib > KDF_MAX_MEMORY_KIB) {
    return `argon2id memory must be ${KDF_MIN_MEMORY_KIB}..${KDF_MAX_MEMORY_KIB} KiB`;
  }
  if (!Number.isSafeInteger(iterations) || iterations < KDF_MIN_ITERATIONS || iterations > KDF_MAX_ITERATIONS) {
    return `argon2id iterations must be ${KDF_MIN_ITERATIONS}..${KDF_MAX_ITERATIONS}`;
  }
  if (!Number.isSafeInteger(parallelism) || parallelism < 1 || parallelism > KDF_MAX_PARALLELISM) {
    return `argon2id parallelism must be 1..${KDF_MAX_PARALLELISM}`;
  }
  return null;
}

/** Bounds for new key files (the same bounds a key file is read with). */
export function validateKdfParams(params: Argon2idParams): void {
  const problem = kdfParamsProblem(params);
  if (problem) throw new KeynodeError('ERR_INVALID_ARGUMENT', problem);
}

/** Bytes of a base64 field, or null unless it is canonical base64 of exactly `length` bytes. */
function base64Field(value: unknown, length: number): Buffer | null {
  if (typeof value !== 'string') return null;
  const bytes = Buffer.from(value, 'base64');
  return bytes.length === length && bytes.toString('base64') === value ? bytes : null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Check every field before anything is derived: the checksum is not a MAC, so a key file may be
 * crafted, and argon2 must never run with parameters keynode would not have written.
 */
function parse(file: string, bytes: Buffer): KeyFileContents {
  const damaged = () => new KeynodeError('ERR_INTEGRITY', `key file ${file} is damaged`, { file });
  const invalidKdf = (why: string) => new KeynodeError('ERR_INTEGRITY', `key file ${file} has invalid KDF parameters: ${why}`, { file });
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw damaged();
  }
  if (!isRecord(value)) throw damaged();
  const { checksum, ...contents } = value;
  if (typeof checksum !== 'string' || !constantTimeEqual(Buffer.from(checksum, 'base64'), sha256(Buffer.from(JSON.stringify(contents))))) {
    throw damaged();
  }
  if (typeof contents.format !== 'string') throw damaged();
  if (contents.format !== FORMAT) {
    throw new KeynodeError('ERR_NOT_SUPPORTED', `key file ${file} has unknown format ${JSON.stringify(contents.format.slice(0, 40))}`, { file });
  }
  const kdf = contents.kdf;
  if (!isRecord(kdf)) throw invalidKdf('no kdf object');
  if (kdf.algorithm !== 'argon2id') throw invalidKdf('the algorithm is not argon2id');
  const { memoryKib, iterations, parallelism } = kdf;
  if (typeof memoryKib !== 'number' || typeof iterations !== 'number' || typeof parallelism !== 'number') {
    throw invalidKdf('memoryKib, iterations and parallelism must be numbers');
  }
  const problem = kdfParamsProblem({ memoryKib, iterations, parallelism });
  if (problem) throw invalidKdf(problem);
  if (!base64Field(kdf.salt, SALT_BYTES)) throw invalidKdf(`the salt must be ${SALT_BYTES} bytes of base64`);
  if (!base64Field(contents.wrapped, AEAD_OVERHEAD_BYTES + MASTER_SECRET_BYTES)) throw damaged();
  if (!base64Field(contents.phraseCheck, PHRASE_CHECK_BYTES)) throw damaged();
  // Exactly the fields keynode writes: the header is associated data, so an extra field would
  // only surface later as a misleading "wrong password". (Their order is kept as written.)
  if (!sameKeys(kdf, ['algorithm', 'memoryKib', 'iterations', 'parallelism', 'salt'])) throw invalidKdf('unexpected fields');
  if (!sameKeys(contents, ['format', 'kdf', 'wrapped', 'phraseCheck'])) throw damaged();
  return contents as unknown as KeyFileContents;
}

function sameKeys(record: Record<string, unknown>, expected: string[]): boolean {
  const keys = Object.keys(record);
  return keys.length === expected.length && expected.every((key) => Object.hasOwn(record, key));
}

async function wrap(masterSecret: Uint8Array, password: Uint8Array, params: Argon2idParams): Promise<KeyFileContents> {
  validateKdfParams(params);
  const salt = randomBytes(SALT_BYTES);
  const { memoryKib, iterations, parallelism } = params;
  const header = { format: FORMAT, kdf: { algorithm: 'argon2id' as const, memoryKib, iterations, parallelism, salt: salt.toString('base64') } };
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
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    if (size > KEY_FILE_MAX_BYTES) throw new KeynodeError('ERR_INTEGRITY', `key file ${file} is damaged (${size} bytes)`, { file });
    bytes = Buffer.alloc(size);
    bytes = bytes.subarray(0, fs.readSync(fd, bytes, 0, size, 0));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new KeynodeError('ERR_NODE_NOT_FOUND', `no keynode node at ${nodeDir} (run "keynode init")`, { nodeDir });
    }
    if ((error as NodeJS.ErrnoException).code === 'EISDIR') {
      throw new KeynodeError('ERR_INTEGRITY', `key file ${file} is damaged (a directory)`, { file });
    }
    throw fromSystemError(error, `reading ${file}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
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
