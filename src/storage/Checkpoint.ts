import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, aeadKey, type AeadKey } from '../crypto/aead.js';
import { hkdf } from '../crypto/kdf.js';
import { randomNonce } from '../crypto/random.js';
import { FILE_MODE, syncDir, writeAll } from './files.js';
import { ROW_BYTES, ROW_WORDS, type RecordIndex } from './RecordIndex.js';

/**
 * The index checkpoint (`store.checkpoint`): the record index as of one batch of the log, so
 * opening replays only the batches after it instead of the whole log.
 *
 *   file      = MAGIC "KNCKPT01" | nonce (12) | AES-256-GCM(checkpointKey, plaintext, aad = MAGIC | logFileId u64) | tag (16)
 *   plaintext = sequence u64 | end u64 | batchStart u64 | batchMac (32) | count u64 | row*count
 *   row       = record id (32) | value offset float64 | value length u32 | 0 u32    (little-endian)
 *   checkpointKey = HKDF-SHA256(batch key, "keynode/store/checkpoint")
 *
 * `sequence` is the last batch it covers, `[batchStart, end)` where that batch lies in the log
 * and `batchMac` that batch's MAC. Opening trusts a checkpoint only if it decrypts (so it is
 * this node's and whole) and the log still holds that very batch at that place (its length tag,
 * MAC and sequence verify and the MAC is the one recorded); anything else (damaged, foreign,
 * from before a compaction, beyond a cut log) is ignored and the log replayed in full. Nothing
 * in it is plaintext except the magic. `logFileId` (the log file's inode number, in the AAD, not
 * stored) binds a checkpoint to the one log file it was made from: a copy of the node directory
 * has its own log file, so a checkpoint carried from one copy to another fails authentication,
 * even when both copies end with byte-identical batches. Moving the directory within a file
 * system keeps it; a copy or a restore costs one full replay.
 */
const MAGIC = Buffer.from('KNCKPT01', 'ascii');
const HEADER_BYTES = 8 + 8 + 8 + 32 + 8;
export const CHECKPOINT_FILE = 'store.checkpoint';
/** Rows encrypted and written per step. */
const ROWS_PER_CHUNK = 65_536;

/** The batch a checkpoint ends at. */
export interface CheckpointPosition {
  sequence: bigint;
  end: number;
  batchStart: number;
  batchMac: Buffer;
  /** The log file's inode number (see above). */
  logFileId: bigint;
}

export interface LoadedCheckpoint {
  position: CheckpointPosition;
  /** ROW_WORDS words per row. */
  rows: Uint32Array;
  count: number;
}

export function checkpointKey(batchKey: Uint8Array): AeadKey {
  return aeadKey(hkdf(batchKey, 'keynode/store/checkpoint'));
}

/** Rows are read through typed-array views in native byte order, written as little-endian. */
export const CHECKPOINTS_SUPPORTED = os.endianness() === 'LE';

/**
 * Read and decrypt a checkpoint. Returns null when there is none, or the reason it is unusable.
 * Whether it matches the log is for the caller to check (it holds the log).
 */
function additionalData(logFileId: bigint): Buffer {
  const id = Buffer.alloc(8);
  id.writeBigUInt64LE(BigInt.asUintN(64, logFileId));
  return Buffer.concat([MAGIC, id]);
}

export function readCheckpoint(dir: string, key: AeadKey, logFileId: bigint): LoadedCheckpoint | { unusable: string } | null {
  if (!CHECKPOINTS_SUPPORTED) return null;
  let sealed: Buffer;
  try {
    sealed = fs.readFileSync(path.join(dir, CHECKPOINT_FILE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { unusable: 'unreadable' };
  }
  if (sealed.length < MAGIC.length + AEAD_NONCE_BYTES + HEADER_BYTES + AEAD_TAG_BYTES || !sealed.subarray(0, MAGIC.length).equals(MAGIC))
    return { unusable: 'damaged' };
  // Decrypt into an 8-aligned buffer of our own so rows can be viewed as words and doubles.
  const bodyLength = sealed.length - MAGIC.length - AEAD_NONCE_BYTES - AEAD_TAG_BYTES;
  const plain = Buffer.from(new ArrayBuffer(bodyLength));
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(MAGIC.length, MAGIC.length + AEAD_NONCE_BYTES), { authTagLength: AEAD_TAG_BYTES });
    decipher.setAAD(additionalData(logFileId));
    decipher.setAuthTag(sealed.subarray(sealed.length - AEAD_TAG_BYTES));
    const body = sealed.subarray(MAGIC.length + AEAD_NONCE_BYTES, sealed.length - AEAD_TAG_BYTES);
    let at = 0;
    for (let from = 0; from < body.length; from += 16 * 1024 * 1024) {
      at += decipher.update(body.subarray(from, from + 16 * 1024 * 1024)).copy(plain, at);
    }
    decipher.final();
  } catch {
    return { unusable: 'failed authentication (damaged, not this store, or made for another copy of its log)' };
  }
  const count = Number(plain.readBigUInt64LE(56));
  if (HEADER_BYTES + count * ROW_BYTES !== bodyLength) return { unusable: 'damaged' };
  return {
    position: {
      sequence: plain.readBigUInt64LE(0),
      end: Number(plain.readBigUInt64LE(8)),
      batchStart: Number(plain.readBigUInt64LE(16)),
      batchMac: Buffer.from(plain.subarray(24, 56)),
      logFileId,
    },
    rows: new Uint32Array(plain.buffer, HEADER_BYTES, count * ROW_WORDS),
    count,
  };
}

/** The file's bytes in pieces (so a background writer can yield between them). */
function* encode(key: AeadKey, position: CheckpointPosition, index: RecordIndex): Generator<Buffer> {
  const nonce = randomNonce(AEAD_NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(additionalData(position.logFileId));
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeBigUInt64LE(position.sequence, 0);
  header.writeBigUInt64LE(BigInt(position.end), 8);
  header.writeBigUInt64LE(BigInt(position.batchStart), 16);
  position.batchMac.copy(header, 24);
  header.writeBigUInt64LE(BigInt(index.size), 56);
  yield Buffer.concat([MAGIC, nonce, cipher.update(header)]);
  const rows = new Uint32Array(ROWS_PER_CHUNK * ROW_WORDS);
  const rowBytes = Buffer.from(rows.buffer);
  let written = 0;
  // Slots per step: each holds at most one row, so a chunk never overflows.
  for (let slot = 0; slot < index.slotCount; slot += ROWS_PER_CHUNK) {
    const n = index.copyRows(slot, ROWS_PER_CHUNK, rows, 0);
    written += n;
    if (n > 0) yield cipher.update(rowBytes.subarray(0, n * ROW_BYTES));
  }
  if (written !== index.size) throw new Error('checkpoint row count mismatch');
  const final = cipher.final();
  yield Buffer.concat([final, cipher.getAuthTag()]);
}

function tempName(dir: string): string {
  return path.join(dir, `${CHECKPOINT_FILE}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
}

/**
 * Temp files this process is writing now. Any other temp file is a leftover of a writer that
 * was killed: a process id says nothing (a restarted agent in a container gets the same one).
 */
const writing = new Set<string>();

function isTempName(name: string): boolean {
  return name.startsWith(`${CHECKPOINT_FILE}.`) && name.endsWith('.tmp');
}

/** Remove temp files left by killed checkpoint writers (the node lock makes this the only writer). */
export function removeCheckpointLeftovers(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    if (isTempName(name) && !writing.has(file)) fs.rmSync(file, { force: true });
  }
}

/** Write a checkpoint atomically (temp file, fsync, rename, fsync dir). Throws on failure. */
export function writeCheckpoint(dir: string, key: AeadKey, position: CheckpointPosition, index: RecordIndex): void {
  removeCheckpointLeftovers(dir);
  const temp = tempName(dir);
  let fd: number | undefined;
  try {
    fd = fs.openSync(temp, 'wx', FILE_MODE);
    let at = 0;
    for (const piece of encode(key, position, index)) {
      writeAll(fd, piece, at);
      at += piece.length;
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temp, path.join(dir, CHECKPOINT_FILE));
    syncDir(dir);
  } catch (error) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw error;
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The same, in steps that leave the event loop free (I/O on the thread pool, one chunk of rows
 * encrypted per turn). `index` must not change meanwhile (pass a clone). `abandoned()` is asked
 * before each step and before the rename: once true, the temp file is removed and nothing else.
 */
export async function writeCheckpointInSteps(
  dir: string,
  key: AeadKey,
  position: CheckpointPosition,
  index: RecordIndex,
  abandoned: () => boolean,
): Promise<boolean> {
  removeCheckpointLeftovers(dir);
  const temp = tempName(dir);
  // Claimed before it exists: the file appears before this function resumes.
  writing.add(temp);
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(temp, 'wx', FILE_MODE);
  } catch (error) {
    writing.delete(temp);
    throw error;
  }
  let renamed = false;
  try {
    for (const piece of encode(key, position, index)) {
      if (abandoned()) return false;
      let done = 0;
      while (done < piece.length) {
        const { bytesWritten } = await handle.write(piece, done, piece.length - done);
        if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'ENOSPC' });
        done += bytesWritten;
      }
      await nextTurn();
    }
    await handle.sync();
    if (abandoned()) return false;
    fs.renameSync(temp, path.join(dir, CHECKPOINT_FILE));
    renamed = true;
    const dirHandle = await fs.promises.open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
    return true;
  } finally {
    writing.delete(temp);
    await handle.close();
    if (!renamed) fs.rmSync(temp, { force: true });
  }
}

/** Remove the checkpoint (it no longer matches the log); leftovers of interrupted writes too. */
export function removeCheckpoint(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    if (name === CHECKPOINT_FILE || isTempName(name)) fs.rmSync(path.join(dir, name), { force: true });
  }
}
