import fs from 'node:fs';
import path from 'node:path';
import { AEAD_OVERHEAD_BYTES, AEAD_TAG_BYTES, open, seal, type AeadKey } from '../crypto/aead.js';
import { hkdf } from '../crypto/kdf.js';
import { constantTimeEqual, hmacSha256, hmacSha256Stream } from '../crypto/mac.js';
import { sha256Stream } from '../crypto/hash.js';
import { KeynodeError, fromSystemError } from '../errors.js';
import {
  STORE_CHECKPOINT_CLOSE_BYTES,
  STORE_CHECKPOINT_INTERVAL_BYTES,
  STORE_COMPACT_BATCH_BYTES,
  STORE_COMPACT_BATCH_RECORDS,
  STORE_COMPACT_DEAD_RATIO,
  STORE_COMPACT_MIN_BYTES,
  STORE_COMPACT_SPARE_BYTES,
  STORE_MAX_RECORD_BYTES,
  STORE_STEP_MS,
} from '../constants.js';
import { FILE_MODE, syncDir, writeAll, writeFileAtomic } from './files.js';
import { StoreMark } from './StoreMark.js';
import { RECORD_ID_BYTES, type Keyspace } from './Keyspace.js';
import { RecordIndex } from './RecordIndex.js';
import {
  CHECKPOINTS_SUPPORTED,
  checkpointKey,
  readCheckpoint,
  removeCheckpoint,
  removeCheckpointLeftovers,
  writeCheckpoint,
  writeCheckpointInSteps,
  type CheckpointPosition,
} from './Checkpoint.js';

/**
 * The node's one data file: an append-only log of batches.
 *
 *   file   = MAGIC(8) batch*
 *   batch  = bodyLength u32 | lengthTag(16) | body | mac(32)
 *   lengthTag = HMAC(batchKey, "length" | batch offset u64 | bodyLength)[0..16]
 *   body   = sequence u64 | opCount u32 | op*
 *   op     = kind u8 (1 put, 2 delete) | id(32) | [valueLength u32 | sealed value]
 *   mac    = HMAC(batchKey, bodyLength | sequence | opCount | per op: kind, id, valueLength, value tag)
 *
 * Each value is AES-256-GCM sealed with its keyspace's key and its id as associated data, so
 * a value cannot be altered or moved to another id. The batch MAC binds the framing (ids,
 * kinds, lengths, tags) and a gap-free sequence, so a flipped id, a dropped or reordered batch
 * is caught when the node opens. One batch is one write() plus one fdatasync(): it is either
 * wholly in the file or, torn by a crash, cut off on the next open, never half applied.
 * The length tag tells a torn last batch (valid tag, body cut short) from a damaged length
 * (invalid tag): only the first is left out; damage is reported and nothing is truncated.
 * Opening never changes the file: a torn tail is set aside (copied to `store.log.torn-…`) and
 * cut off by the next write, so read-only commands leave the log as they found it.
 *
 * Sequence numbers never restart: compaction writes the live records as new batches that
 * continue the sequence, so the first batch of a log may carry any sequence. A cut at a batch
 * boundary, or an older copy of the log, is caught by the high-water mark (`store.mark`, see
 * StoreMark): the log must reach the last sequence this node acknowledged.
 */
const MAGIC = Buffer.from('KNSTORE1', 'ascii');
const MAC_BYTES = 32;
const LENGTH_TAG_BYTES = 16;
/** Bytes before a batch's body: length and length tag. */
const BATCH_PREFIX_BYTES = 4 + LENGTH_TAG_BYTES;

function lengthTag(batchKey: Buffer, offset: number, bodyLength: number): Buffer {
  const input = Buffer.alloc(6 + 8 + 4);
  input.write('length', 0, 'ascii');
  input.writeBigUInt64BE(BigInt(offset), 6);
  input.writeUInt32BE(bodyLength, 14);
  return hmacSha256(batchKey, input).subarray(0, LENGTH_TAG_BYTES);
}
const OP_PUT = 1;
const OP_DELETE = 2;
const READ_CHUNK_BYTES = 4 * 1024 * 1024;

export const STORE_FILE = 'store.log';
/** Prefix of files holding a torn tail set aside (an unacknowledged batch, still encrypted). */
export const TORN_TAIL_PREFIX = `${STORE_FILE}.torn-`;

export type BatchOp =
  | { keyspace: Keyspace; name: string; value: Uint8Array }
  | { keyspace: Keyspace; name: string; delete: true }
  /**
   * A value its writer already sealed with an AEAD of its own (a chunk of a large value,
   * src/vaults/largeBlobs.ts): stored as given, its last 16 bytes (the tag) covered by the batch
   * MAC like any value's. Read back with `getSealed`; the writer's reader verifies it.
   */
  | { keyspace: Keyspace; name: string; sealed: Uint8Array };

function integrityError(message: string, data: Record<string, unknown> = {}): KeynodeError {
  return new KeynodeError('ERR_INTEGRITY', message, data);
}

/** Sequential reader over the log file that tolerates records spanning chunk boundaries. */
class LogReader {
  private buffer = Buffer.alloc(0);
  private bufferStart = 0;

  constructor(
    private readonly fd: number,
    readonly fileSize: number,
  ) {}

  /** Bytes [offset, offset+length) or null if the file ends first. */
  read(offset: number, length: number): Buffer | null {
    if (offset + length > this.fileSize) return null;
    const end = offset + length;
    if (offset < this.bufferStart || end > this.bufferStart + this.buffer.length) {
      const size = Math.max(length, Math.min(READ_CHUNK_BYTES, this.fileSize - offset));
      const chunk = Buffer.allocUnsafe(size);
      const got = fs.readSync(this.fd, chunk, 0, size, offset);
      this.buffer = chunk.subarray(0, got);
      this.bufferStart = offset;
      if (got < length) return null;
    }
    return this.buffer.subarray(offset - this.bufferStart, end - this.bufferStart);
  }
}

interface EncodedOp {
  id: Buffer;
  /** The sealed value of a put; absent for a delete. */
  sealed?: Buffer;
}

/**
 * Frame one batch and its MAC (the inverse of LogStore.replayBatch). Returns the bytes and,
 * for each op, the offset of its sealed value from the start of the batch.
 */
function encodeBatch(offset: number, sequence: bigint, records: readonly EncodedOp[], batchKey: Buffer): { batch: Buffer; valueOffsets: number[] } {
  let bodyLength = 12;
  for (const record of records) bodyLength += 1 + RECORD_ID_BYTES + (record.sealed ? 4 + record.sealed.length : 0);
  if (bodyLength > STORE_MAX_RECORD_BYTES) {
    throw new KeynodeError('ERR_INVALID_ARGUMENT', 'a single change may not exceed 1 GiB');
  }
  const batch = Buffer.allocUnsafe(BATCH_PREFIX_BYTES + bodyLength + MAC_BYTES);
  batch.writeUInt32BE(bodyLength, 0);
  lengthTag(batchKey, offset, bodyLength).copy(batch, 4);
  batch.writeBigUInt64BE(sequence, BATCH_PREFIX_BYTES);
  batch.writeUInt32BE(records.length, BATCH_PREFIX_BYTES + 8);
  const mac = hmacSha256Stream(batchKey);
  mac.update(batch.subarray(0, 4));
  mac.update(batch.subarray(BATCH_PREFIX_BYTES, BATCH_PREFIX_BYTES + 12));
  const valueOffsets: number[] = [];
  let cursor = BATCH_PREFIX_BYTES + 12;
  for (const record of records) {
    const opStart = cursor;
    batch[cursor] = record.sealed ? OP_PUT : OP_DELETE;
    record.id.copy(batch, cursor + 1);
    cursor += 1 + RECORD_ID_BYTES;
    if (record.sealed) {
      batch.writeUInt32BE(record.sealed.length, cursor);
      cursor += 4;
      record.sealed.copy(batch, cursor);
      valueOffsets.push(cursor);
      cursor += record.sealed.length;
      mac.update(batch.subarray(opStart, opStart + 1 + RECORD_ID_BYTES + 4));
      mac.update(record.sealed.subarray(record.sealed.length - AEAD_TAG_BYTES));
    } else {
      valueOffsets.push(-1);
      mac.update(batch.subarray(opStart, cursor));
    }
  }
  mac.digest().copy(batch, cursor);
  return { batch, valueOffsets };
}

export interface OpenStoreOptions {
  /**
   * Accept a log that ends before the high-water mark (cut, or an older copy put back), or
   * has no mark, and move the mark to where the log ends. Only on the user's explicit word.
   */
  acceptOlderState?: boolean;
  /** Ignore store.checkpoint and replay the whole log (tests, the benchmark). */
  useCheckpoint?: boolean;
}

/** What opening the store found that the owner should hear about. */
export interface StoreOpenReport {
  /** Bytes after the last whole batch: an append a crash interrupted (never acknowledged). */
  tornTailBytes: number;
  /** Where that tail was copied once a write cut it off. */
  tornTailSetAsideTo?: string;
  /** The log ended before the high-water mark and the owner accepted it (acceptOlderState). */
  acceptedOlderState?: { logSequence: string; markSequence: string };
}

/** What opening did: where replay started and how much of the log it decoded (tests, bench). */
export interface StoreOpenStats {
  /** 'used': the index came from store.checkpoint; 'ignored': it did not verify or match the log. */
  checkpoint: 'used' | 'none' | 'ignored';
  ignoredBecause?: string;
  replayedFromOffset: number;
  replayedBatches: number;
  replayedOps: number;
}

/** One op as replayed: the value's file offset, and its offset inside the batch body. */
type ReplayedOp = { id: Buffer; offset: number; length: number; bodyAt: number } | { id: Buffer; deleted: true };

/** A pause point of a long job: yield to the event loop, or fsync this descriptor first. */
type Step = undefined | { fsync: number };

/** Run steps that never ask for an fsync straight through; their result. */
function runToEnd<T>(steps: Generator<Step, T>): T {
  let step = steps.next();
  while (!step.done) step = steps.next();
  return step.value;
}

export class LogStore {
  private index = new RecordIndex();
  private end = MAGIC.length;
  /** The file's real size: `end` plus any torn tail not yet set aside. */
  private fileSize = MAGIC.length;
  private sequence = 0n;
  /** Where the last whole batch starts (a checkpoint names it). */
  private lastBatchStart = 0;
  private deadBytes = 0;
  private closed = false;
  /** The torn tail as opened; bytes there that differ later were written by another process. */
  private tornTail: Buffer = Buffer.alloc(0);
  private leftoversRemoved = false;
  readonly report: StoreOpenReport = { tornTailBytes: 0 };
  readonly openStats: StoreOpenStats = { checkpoint: 'none', replayedFromOffset: MAGIC.length, replayedBatches: 0, replayedOps: 0 };
  private readonly checkpointKey: AeadKey;
  /** Log end covered by the newest checkpoint on disk that matches this log (0: none). */
  private checkpointEnd = 0;
  private checkpointing: Promise<void> | null = null;
  /** Bumped to abandon background work (a checkpoint or compaction in steps). */
  private generation = 0;
  private compacting: Promise<void> | null = null;
  /** When set, replay hashes each put's id and value (compaction's read-back check). */
  private replayDigest: ReturnType<typeof sha256Stream> | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /** What the last compaction did: records copied, and batches written meanwhile carried over. */
  readonly compactionStats = { copiedRecords: 0, carriedBatches: 0 };

  private constructor(
    readonly file: string,
    private fd: number,
    private readonly batchKey: Buffer,
    private readonly mark: StoreMark,
  ) {
    this.checkpointKey = checkpointKey(batchKey);
  }

  /** Derive the batch-authentication key from the node's master secret. */
  static batchKeyFrom(masterSecret: Uint8Array): Buffer {
    return hkdf(masterSecret, 'keynode/store/batch-mac');
  }

  static exists(dir: string): boolean {
    return fs.existsSync(path.join(dir, STORE_FILE));
  }

  /** Whether the store holds any batch (more than its header), without a key. */
  static hasData(dir: string): boolean {
    try {
      return fs.statSync(path.join(dir, STORE_FILE)).size > MAGIC.length;
    } catch {
      return false;
    }
  }

  /**
   * Whether the log was written with this batch key: its first batch's length tag verifies.
   * Tells "another node's phrase" from damage before anything else is read.
   */
  static belongsTo(dir: string, batchKey: Buffer): boolean {
    const prefix = Buffer.alloc(MAGIC.length + BATCH_PREFIX_BYTES);
    let fd: number;
    try {
      fd = fs.openSync(path.join(dir, STORE_FILE), 'r');
    } catch (error) {
      throw fromSystemError(error, 'opening the store');
    }
    try {
      if (fs.readSync(fd, prefix, 0, prefix.length, 0) !== prefix.length) return false;
    } finally {
      fs.closeSync(fd);
    }
    const bodyLength = prefix.readUInt32BE(MAGIC.length);
    return constantTimeEqual(prefix.subarray(MAGIC.length + 4), lengthTag(batchKey, MAGIC.length, bodyLength));
  }

  /** Create an empty store file and its high-water mark (fails if a store exists). */
  static create(dir: string, batchKey: Buffer): void {
    const file = path.join(dir, STORE_FILE);
    try {
      // The log first: 'wx' refuses an existing store before its mark could be reset to 0.
      const fd = fs.openSync(file, 'wx', FILE_MODE);
      try {
        writeAll(fd, MAGIC, 0);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      StoreMark.create(dir, batchKey);
      syncDir(dir);
    } catch (error) {
      throw fromSystemError(error, 'creating the store');
    }
  }

  /**
   * Open and verify the log, rebuilding the index. Nothing in the file is changed: a batch torn
   * by a crash at the end is left out (and set aside by the next write); any other damage, or
   * a log that ends before the high-water mark, fails with ERR_INTEGRITY.
   */
  static open(dir: string, batchKey: Buffer, options: OpenStoreOptions = {}): LogStore {
    const file = path.join(dir, STORE_FILE);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r+');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new KeynodeError('ERR_NODE_NOT_FOUND', `no store at ${dir}`, { nodeDir: dir });
      }
      throw fromSystemError(error, 'opening the store');
    }
    let mark: StoreMark | undefined;
    try {
      mark = StoreMark.open(dir, batchKey);
      const store = new LogStore(file, fd, batchKey, mark);
      store.replay({ useCheckpoint: options.useCheckpoint ?? true });
      store.checkMark(options);
      return store;
    } catch (error) {
      mark?.close();
      fs.closeSync(fd);
      throw error;
    }
  }

  /** The log must reach the last sequence this node acknowledged. */
  private checkMark(options: OpenStoreOptions): void {
    const marked = this.mark.sequence;
    if (marked !== null ? marked <= this.sequence : this.end === MAGIC.length) return;
    if (options.acceptOlderState) {
      if (marked !== null) {
        this.report.acceptedOlderState = { logSequence: String(this.sequence), markSequence: String(marked) };
        this.compact({ sequenceAfter: marked });
      } else this.mark.write(this.sequence, { sync: true });
      return;
    }
    const remedy = 'restore the node directory from a copy or a peer; "keynode check --accept-older-state" accepts the log as it is';
    if (marked === null) {
      throw integrityError(
        `store file ${this.file} has no high-water mark (${StoreMark.FILE} is missing or damaged), so a cut cannot be ruled out; ${remedy}`,
        { file: this.file },
      );
    }
    throw integrityError(
      `store file ${this.file} ends at change ${this.sequence} but this node had written change ${marked}: it was cut short or replaced with an older copy; ${remedy}`,
      { file: this.file, logSequence: String(this.sequence), markSequence: String(marked) },
    );
  }

  private replay(options: { useCheckpoint: boolean }): void {
    runToEnd(this.replaySteps(options));
  }

  /** Read the log into the index, from the checkpoint if one matches; yields now and then. */
  private *replaySteps(options: { useCheckpoint: boolean }): Generator<Step, void> {
    const size = fs.fstatSync(this.fd).size;
    const reader = new LogReader(this.fd, size);
    const magic = reader.read(0, MAGIC.length);
    if (!magic || !magic.equals(MAGIC)) throw integrityError(`store file ${this.file} has a damaged header`);
    const start = options.useCheckpoint ? this.applyCheckpoint(reader) : MAGIC.length;
    const offset = yield* this.replayFrom(reader, start);
    this.end = Math.min(offset, size);
    this.fileSize = size;
    this.report.tornTailBytes = size - this.end;
    this.tornTail = Buffer.from(reader.read(this.end, size - this.end) ?? Buffer.alloc(0));
    this.deadBytes = Math.max(0, this.end - MAGIC.length - this.index.liveBytes());
  }

  /** Replay batches from `offset` to the end of the reader (or a torn tail); the offset reached. */
  private *replayFrom(reader: LogReader, offset: number): Generator<Step, number> {
    this.openStats.replayedFromOffset = offset;
    let lastYield = performance.now();
    while (offset < reader.fileSize) {
      const result = this.replayBatch(reader, offset);
      if (result === 'torn') break; // a crash during the last append: never acknowledged
      offset = result;
      if (performance.now() - lastYield >= STORE_STEP_MS) {
        yield;
        lastYield = performance.now();
      }
    }
    return offset;
  }

  /**
   * Load the checkpoint if it is this store's, whole, and names a batch the log still holds at
   * the same place; returns where replay goes on (the log's start when it is not used).
   */
  private applyCheckpoint(reader: LogReader): number {
    const loaded = readCheckpoint(path.dirname(this.file), this.checkpointKey, this.logFileId());
    if (loaded === null) return MAGIC.length;
    const ignore = (because: string): number => {
      this.openStats.checkpoint = 'ignored';
      this.openStats.ignoredBecause = because;
      return MAGIC.length;
    };
    if ('unusable' in loaded) return ignore(loaded.unusable);
    const { position } = loaded;
    if (position.batchStart < MAGIC.length || position.end > reader.fileSize || position.batchStart >= position.end) return ignore('does not match the log');
    let batch: ReturnType<LogStore['readBatch']>;
    try {
      batch = this.readBatch(reader, position.batchStart);
    } catch {
      return ignore('does not match the log');
    }
    if (batch === 'torn' || batch.next !== position.end || batch.sequence !== position.sequence || !constantTimeEqual(batch.mac, position.batchMac)) {
      return ignore('does not match the log');
    }
    this.index.setRows(loaded.rows, loaded.count);
    this.sequence = position.sequence;
    this.lastBatchStart = position.batchStart;
    this.checkpointEnd = position.end;
    this.openStats.checkpoint = 'used';
    return position.end;
  }

  /** Verify one batch and apply it to the index; returns the next offset, or 'torn'. */
  private replayBatch(reader: LogReader, start: number): number | 'torn' {
    const batch = this.readBatch(reader, start);
    if (batch === 'torn') return 'torn';
    const { sequence, ops } = batch;
    // The first batch continues the sequence of the log it was compacted from; its length tag
    // binds it to this offset, so batches cannot be dropped from the front.
    const expected = start === MAGIC.length ? sequence : this.sequence + 1n;
    if (sequence < 1n || sequence !== expected) {
      throw integrityError(`store file ${this.file} has a missing or reordered batch at byte ${start}`, { file: this.file, offset: start });
    }
    this.sequence = sequence;
    this.lastBatchStart = start;
    this.openStats.replayedBatches++;
    this.openStats.replayedOps += ops.length;
    for (const op of ops) {
      if ('deleted' in op) this.index.delete(op.id);
      else {
        this.index.set(op.id, op.offset, op.length);
        if (this.replayDigest) {
          this.replayDigest.update(op.id);
          this.replayDigest.update(batch.body.subarray(op.bodyAt, op.bodyAt + op.length));
        }
      }
    }
    return batch.next;
  }

  /**
   * Read and verify the batch at `start` (length tag, MAC), without applying it: its ops, body
   * (with the MAC at its end), sequence and next offset; 'torn' for an unfinished last append.
   */
  private readBatch(reader: LogReader, start: number): { next: number; sequence: bigint; ops: ReplayedOp[]; body: Buffer; mac: Buffer } | 'torn' {
    const where = { file: this.file, offset: start };
    const prefix = reader.read(start, BATCH_PREFIX_BYTES);
    if (!prefix) return 'torn'; // the file ends inside a header: a crash during the last append
    const lengthBytes = prefix.subarray(0, 4);
    const bodyLength = lengthBytes.readUInt32BE(0);
    if (!constantTimeEqual(prefix.subarray(4), lengthTag(this.batchKey, start, bodyLength))) {
      // Zeros to the end are an append whose data never reached the disk; anything else is damage.
      if (this.isZeroTail(reader, start)) return 'torn';
      throw integrityError(`store file ${this.file} is damaged at byte ${start} (batch header)`, where);
    }
    if (bodyLength < 12 || bodyLength > STORE_MAX_RECORD_BYTES) {
      throw integrityError(`store file ${this.file} is damaged at byte ${start} (batch length)`, where);
    }
    const body = reader.read(start + BATCH_PREFIX_BYTES, bodyLength + MAC_BYTES);
    if (!body) return 'torn';
    const next = start + BATCH_PREFIX_BYTES + bodyLength + MAC_BYTES;
    const ops = this.verifyBody(body, bodyLength, lengthBytes, start + BATCH_PREFIX_BYTES);
    if (!ops) {
      // The last batch in the file, half on disk after a power cut (its header written, later
      // pages not): never acknowledged, or the mark, which covers every acknowledged batch,
      // refuses the log that lacks it.
      if (next === reader.fileSize) return 'torn';
      throw integrityError(`store file ${this.file} is damaged at byte ${start}`, where);
    }
    return { next, sequence: body.readBigUInt64BE(0), ops, body, mac: body.subarray(bodyLength) };
  }

  /** Parse a batch body and check its MAC; the ops it applies, or null if it does not verify. */
  private verifyBody(body: Buffer, bodyLength: number, lengthBytes: Buffer, bodyOffset: number): ReplayedOp[] | null {
    const mac = hmacSha256Stream(this.batchKey);
    mac.update(lengthBytes);
    const opCount = body.readUInt32BE(8);
    mac.update(body.subarray(0, 12));
    const ops: ReplayedOp[] = [];
    let cursor = 12;
    for (let i = 0; i < opCount; i++) {
      if (cursor + 1 + RECORD_ID_BYTES > bodyLength) return null;
      const kind = body[cursor]!;
      const id = body.subarray(cursor + 1, cursor + 1 + RECORD_ID_BYTES);
      mac.update(body.subarray(cursor, cursor + 1 + RECORD_ID_BYTES));
      cursor += 1 + RECORD_ID_BYTES;
      if (kind === OP_DELETE) {
        ops.push({ id, deleted: true });
        continue;
      }
      if (kind !== OP_PUT || cursor + 4 > bodyLength) return null;
      const valueLength = body.readUInt32BE(cursor);
      if (valueLength < AEAD_TAG_BYTES || cursor + 4 + valueLength > bodyLength) return null;
      mac.update(body.subarray(cursor, cursor + 4));
      mac.update(body.subarray(cursor + 4 + valueLength - AEAD_TAG_BYTES, cursor + 4 + valueLength));
      ops.push({ id, offset: bodyOffset + cursor + 4, length: valueLength, bodyAt: cursor + 4 });
      cursor += 4 + valueLength;
    }
    if (cursor !== bodyLength) return null;
    return constantTimeEqual(mac.digest(), body.subarray(bodyLength, bodyLength + MAC_BYTES)) ? ops : null;
  }

  private isZeroTail(reader: LogReader, start: number): boolean {
    const rest = reader.read(start, reader.fileSize - start);
    return rest !== null && rest.every((byte) => byte === 0);
  }

  private assertOpen(): void {
    if (this.closed) throw new KeynodeError('ERR_INTERNAL', 'the store is closed');
  }

  has(keyspace: Keyspace, name: string): boolean {
    this.assertOpen();
    return this.index.has(keyspace.recordId(name));
  }

  /**
   * Length of a record's value as stored (a sealed record's plaintext length; a pre-sealed
   * one's stored length, less the same overhead), undefined if absent. Reads nothing: lets a
   * caller skip records by size without decrypting them (large-blob manifests).
   */
  valueLength(keyspace: Keyspace, name: string): number | undefined {
    this.assertOpen();
    const location = this.index.get(keyspace.recordId(name));
    return location === undefined ? undefined : location[1] - AEAD_OVERHEAD_BYTES;
  }

  /** The value of a record, undefined if absent; ERR_INTEGRITY if its bytes were altered. */
  get(keyspace: Keyspace, name: string): Buffer | undefined {
    this.assertOpen();
    const id = keyspace.recordId(name);
    const read = this.readRecord(id);
    if (!read) return undefined;
    const value = read.whole ? open(keyspace.encKey, read.sealed, id) : null;
    if (value === null) throw integrityError('a stored record failed its integrity check', { offset: read.offset });
    return value;
  }

  /** A record's stored bytes as the index locates them; `whole` is false when the file ends early. */
  private readRecord(id: Buffer): { sealed: Buffer; offset: number; whole: boolean } | undefined {
    const location = this.index.get(id);
    if (!location) return undefined;
    const [offset, length] = location;
    const sealed = Buffer.allocUnsafe(length);
    let got: number;
    try {
      got = fs.readSync(this.fd, sealed, 0, length, offset);
    } catch (error) {
      throw fromSystemError(error, 'reading the store');
    }
    return { sealed, offset, whole: got === length };
  }

  /**
   * The stored bytes of a record written pre-sealed (`{ sealed }` in a batch), undefined if
   * absent. Not verified here: the record's own reader opens it (its AEAD, its key).
   */
  getSealed(keyspace: Keyspace, name: string): Buffer | undefined {
    this.assertOpen();
    const read = this.readRecord(keyspace.recordId(name));
    if (!read) return undefined;
    if (!read.whole) throw integrityError('a stored record ends early', { offset: read.offset });
    return read.sealed;
  }

  /**
   * Refuse to append unless the file is exactly as this process left it: another process
   * writing without the lock, or a log replaced under us, would otherwise lose writes.
   */
  private assertUnchanged(): void {
    const stat = fs.fstatSync(this.fd);
    if (stat.size !== this.fileSize || stat.nlink === 0) {
      throw integrityError(`store file ${this.file} was changed by another process; nothing was written (reopen the node and retry)`, { file: this.file });
    }
  }

  /** Copy a torn tail aside (it is ciphertext) and cut it off, before the log grows again. */
  private setAsideTornTail(): void {
    if (this.fileSize === this.end) return;
    const tail = Buffer.allocUnsafe(this.fileSize - this.end);
    const got = fs.readSync(this.fd, tail, 0, tail.length, this.end);
    if (got !== tail.length || !tail.equals(this.tornTail)) {
      throw integrityError(`store file ${this.file} was changed by another process; nothing was written (reopen the node and retry)`, { file: this.file });
    }
    if (!tail.every((byte) => byte === 0)) {
      const aside = `${TORN_TAIL_PREFIX}${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`;
      writeFileAtomic(path.join(path.dirname(this.file), aside), tail);
      this.report.tornTailSetAsideTo = aside;
    }
    fs.ftruncateSync(this.fd, this.end);
    fs.fdatasyncSync(this.fd);
    this.fileSize = this.end;
  }

  /**
   * Once per open, at the first write (opening writes nothing): remove what killed writers left,
   * a compaction's new log and checkpoint temp files, each up to the size of the store.
   */
  private removeLeftovers(): void {
    if (this.leftoversRemoved) return;
    this.leftoversRemoved = true;
    try {
      if (!this.compacting) fs.rmSync(`${this.file}.compact`, { force: true });
      removeCheckpointLeftovers(path.dirname(this.file));
    } catch {
      /* only space: tried again at the next open */
    }
  }

  /** Apply puts and deletes as one atomic, durable batch. Returns once it is on disk. */
  write(ops: readonly BatchOp[]): void {
    this.assertOpen();
    if (ops.length === 0) return;
    const sequence = this.sequence + 1n;
    const records = ops.map((op): EncodedOp => {
      const id = op.keyspace.recordId(op.name);
      if ('delete' in op) return { id };
      if ('sealed' in op) {
        // Replay refuses a value shorter than a tag: refuse it here, before anything is written.
        if (op.sealed.length < AEAD_TAG_BYTES) throw new KeynodeError('ERR_INTERNAL', 'a pre-sealed value must end with a 16-byte tag');
        return { id, sealed: Buffer.from(op.sealed.buffer, op.sealed.byteOffset, op.sealed.byteLength) };
      }
      return { id, sealed: seal(op.keyspace.encKey, op.value, id) };
    });
    const start = this.end;
    const { batch, valueOffsets } = encodeBatch(start, sequence, records, this.batchKey);
    try {
      this.assertUnchanged();
      this.setAsideTornTail();
    } catch (error) {
      throw fromSystemError(error, 'writing to the store');
    }
    this.removeLeftovers();
    try {
      writeAll(this.fd, batch, start);
      fs.fdatasyncSync(this.fd);
    } catch (error) {
      // Take the partial batch back off so the file ends on a whole batch; nothing changed.
      try {
        fs.ftruncateSync(this.fd, start);
      } catch {
        /* the next open leaves the torn tail out instead */
      }
      throw fromSystemError(error, 'writing to the store');
    }
    this.sequence = sequence;
    this.lastBatchStart = start;
    this.end = start + batch.length;
    this.fileSize = this.end;
    this.mark.write(sequence);
    records.forEach((record, i) => {
      this.deadBytes += record.sealed ? this.index.set(record.id, start + valueOffsets[i]!, record.sealed.length) : this.index.delete(record.id);
    });
    this.checkpointInBackground();
  }

  /**
   * Run `work` once every piece of work queued before it has settled: the store's one write
   * queue. Whoever reads a record to decide what to write (a head, the vault registry) does the
   * read and the write inside one `exclusive` call, so no other writer slips in between.
   */
  exclusive<T>(work: () => Promise<T> | T): Promise<T> {
    const run = this.queue.then(
      () => work(),
      () => work(),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  // --- checkpoints ------------------------------------------------------------------------

  /** The last whole batch, as a checkpoint names it; null for an empty log. */
  private checkpointPosition(): CheckpointPosition | null {
    if (this.end === MAGIC.length) return null;
    const batchMac = Buffer.alloc(MAC_BYTES);
    if (fs.readSync(this.fd, batchMac, 0, MAC_BYTES, this.end - MAC_BYTES) !== MAC_BYTES) return null;
    return { sequence: this.sequence, end: this.end, batchStart: this.lastBatchStart, batchMac, logFileId: this.logFileId() };
  }

  /** The identity a checkpoint is bound to: this log file's inode number. */
  private logFileId(): bigint {
    return fs.fstatSync(this.fd, { bigint: true }).ino;
  }

  /** Log bytes a checkpoint would save replaying. */
  private get uncheckpointedBytes(): number {
    return this.end - Math.max(this.checkpointEnd, MAGIC.length);
  }

  /** Write a checkpoint now (synchronously) for the log as it is. */
  checkpoint(): void {
    this.assertOpen();
    const position = this.checkpointPosition();
    if (!position || !CHECKPOINTS_SUPPORTED) return;
    this.generation++; // a background checkpoint in flight is older: drop it
    try {
      writeCheckpoint(path.dirname(this.file), this.checkpointKey, position, this.index);
    } catch (error) {
      throw fromSystemError(error, 'writing the index checkpoint');
    }
    this.checkpointEnd = position.end;
  }

  /**
   * After a write: once the log has grown STORE_CHECKPOINT_INTERVAL_BYTES past the last
   * checkpoint (STORE_CHECKPOINT_CLOSE_BYTES when none matches), write one from a copy of the
   * index, in steps, after the write has returned. It never delays an acknowledgement beyond
   * the copy (a few memcpys).
   */
  private checkpointInBackground(): void {
    if (this.checkpointing || this.compacting || !CHECKPOINTS_SUPPORTED) return;
    if (this.uncheckpointedBytes < (this.checkpointEnd === 0 ? STORE_CHECKPOINT_CLOSE_BYTES : STORE_CHECKPOINT_INTERVAL_BYTES)) return;
    const position = this.checkpointPosition();
    if (!position) return;
    const generation = this.generation;
    const abandoned = () => this.closed || generation !== this.generation;
    this.checkpointing = writeCheckpointInSteps(path.dirname(this.file), this.checkpointKey, position, this.index.clone(), abandoned)
      .then((done) => {
        if (done && !abandoned()) this.checkpointEnd = Math.max(this.checkpointEnd, position.end);
      })
      .catch(() => {
        /* a checkpoint only saves time; the next write or close tries again */
      })
      .finally(() => {
        this.checkpointing = null;
      });
  }

  /** Settles once no background checkpoint is in flight (tests; a clean shutdown). */
  async settled(): Promise<void> {
    while (this.checkpointing || this.compacting) await (this.checkpointing ?? this.compacting)!.catch(() => undefined);
  }

  /**
   * Replay the whole log from its start and compare with the index in use. Opening from a
   * checkpoint verifies only the batches after it; `keynode check` verifies every one here.
   */
  verifyLog(): void {
    this.assertOpen();
    const fd = fs.openSync(this.file, 'r');
    try {
      const check = new LogStore(this.file, fd, this.batchKey, this.mark);
      check.replay({ useCheckpoint: false });
      const bad = (what: string) => integrityError(`store file ${this.file} does not match its index (${what})`, { file: this.file });
      if (check.end !== this.end || check.sequence !== this.sequence) throw bad('length');
      if (check.index.size !== this.index.size) throw bad('record count');
      for (const [id, offset, length] of check.index.entries()) {
        const location = this.index.get(id);
        if (!location || location[0] !== offset || location[1] !== length) throw bad('index');
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Bytes the store file takes on disk. */
  get sizeBytes(): number {
    return this.end;
  }

  /** Number of live records. */
  get recordCount(): number {
    return this.index.size;
  }

  /** Ids of every live record, in no particular order (for `keynode check`). */
  *liveRecordIds(): IterableIterator<Buffer> {
    this.assertOpen();
    for (const [id] of this.index.entries()) yield id;
  }

  /** Sizes for reports: the file, its live values, and bytes held by overwritten or deleted records. */
  stats(): { sizeBytes: number; liveBytes: number; deadBytes: number; recordCount: number } {
    this.assertOpen();
    return { sizeBytes: this.end, liveBytes: this.index.liveBytes(), deadBytes: this.deadBytes, recordCount: this.index.size };
  }

  /** Whether enough of the log is dead (overwritten or deleted records) to be worth compacting. */
  get shouldCompact(): boolean {
    return this.end >= STORE_COMPACT_MIN_BYTES && this.deadBytes / this.end >= STORE_COMPACT_DEAD_RATIO;
  }

  /**
   * Rewrite the log with live records only. Values are copied sealed as they are (no key is
   * needed to move them) into batches that continue the sequence. The old log is replaced (by
   * an atomic rename) only once the new one is complete, fsynced, and read back verified; it
   * does not start without free space for the live data. Synchronous (close, `check`); while
   * the event loop serves others use `compactInSteps`.
   */
  compact(options: { sequenceAfter?: bigint } = {}): void {
    this.assertOpen();
    this.generation++; // a compaction or checkpoint in steps is superseded
    const steps = this.compactSteps(options);
    let step = steps.next();
    while (!step.done) {
      try {
        if (step.value) fs.fsyncSync(step.value.fsync);
      } catch (error) {
        step = steps.throw(error);
        continue;
      }
      step = steps.next();
    }
  }

  /**
   * The same compaction in steps of about STORE_STEP_MS, yielding to the event loop between
   * them (fsyncs run on the thread pool). Writes made meanwhile go to the old log as usual and
   * are acknowledged at once; the last (synchronous) step carries them over into the new log,
   * renumbered after the copied batches. Fails with ERR_CANCELLED (the store unchanged) when
   * the store is closed or compacted synchronously meanwhile. One at a time: a second call
   * returns the first one's promise.
   */
  compactInSteps(): Promise<void> {
    this.assertOpen();
    if (this.compacting) return this.compacting;
    const generation = ++this.generation;
    const run = async () => {
      const steps = this.compactSteps({});
      let step = steps.next();
      while (!step.done) {
        try {
          const pending = step.value;
          if (pending) await new Promise<void>((resolve, reject) => fs.fsync(pending.fsync, (error) => (error ? reject(error) : resolve())));
          else await new Promise<void>((resolve) => setImmediate(resolve));
        } catch (error) {
          step = steps.throw(error);
          continue;
        }
        if (this.closed || generation !== this.generation) {
          steps.return();
          throw new KeynodeError('ERR_CANCELLED', 'compaction was interrupted (the store was closed or compacted meanwhile); the store is unchanged');
        }
        step = steps.next();
      }
    };
    this.compacting = run().finally(() => {
      this.compacting = null;
    });
    return this.compacting;
  }

  private *compactSteps(options: { sequenceAfter?: bigint }): Generator<Step, void> {
    const dir = path.dirname(this.file);
    const temp = `${this.file}.compact`;
    const liveCount = this.index.size;
    // Ids, kinds, lengths and per-batch framing come on top of the sealed values.
    const needed = MAGIC.length + this.index.liveBytes() + liveCount * (1 + RECORD_ID_BYTES + 4) + STORE_COMPACT_SPARE_BYTES;
    try {
      this.assertUnchanged();
      this.setAsideTornTail();
      const space = fs.statfsSync(dir);
      const available = space.bavail * space.bsize;
      if (available < needed) {
        throw new KeynodeError(
          'ERR_NO_SPACE',
          `not enough free space to compact the store (${needed} bytes needed, ${available} free); the store is unchanged`,
          { needed, available },
        );
      }
    } catch (error) {
      throw fromSystemError(error, 'compacting the store');
    }
    const snapshotEnd = this.end;
    const written = sha256Stream();
    let copied = 0;
    let end = MAGIC.length;
    let sequence = options.sequenceAfter !== undefined && options.sequenceAfter > this.sequence ? options.sequenceAfter : this.sequence;
    let fd: number | undefined;
    let checkFd: number | undefined;
    let committed = false;
    let check: LogStore | undefined;
    const append = (records: EncodedOp[]) => {
      sequence += 1n;
      const { batch } = encodeBatch(end, sequence, records, this.batchKey);
      writeAll(fd!, batch, end);
      end += batch.length;
    };
    try {
      fs.rmSync(temp, { force: true });
      fd = fs.openSync(temp, 'wx', FILE_MODE);
      writeAll(fd, MAGIC, 0);
      // Walk the old log (every batch verified again: an open from a checkpoint did not read
      // them); a put is live if the index still points at it. Later writes are carried below.
      const reader = new LogReader(this.fd, snapshotEnd);
      let group: EncodedOp[] = [];
      let groupBytes = 0;
      let offset = MAGIC.length;
      let lastYield = performance.now();
      while (offset < snapshotEnd) {
        const batch = this.readBatch(reader, offset);
        if (batch === 'torn') throw integrityError(`store file ${this.file} ended inside a batch while compacting`, { offset });
        for (const op of batch.ops) {
          if ('deleted' in op) continue;
          const location = this.index.get(op.id);
          if (!location || location[0] !== op.offset) continue;
          const record = { id: Buffer.from(op.id), sealed: Buffer.from(batch.body.subarray(op.bodyAt, op.bodyAt + op.length)) };
          group.push(record);
          written.update(record.id);
          written.update(record.sealed);
          groupBytes += op.length;
          copied++;
          if (groupBytes >= STORE_COMPACT_BATCH_BYTES || group.length >= STORE_COMPACT_BATCH_RECORDS) {
            append(group);
            group = [];
            groupBytes = 0;
          }
        }
        offset = batch.next;
        if (performance.now() - lastYield >= STORE_STEP_MS) {
          yield;
          lastYield = performance.now();
        }
      }
      // Nothing live: one empty batch still carries the sequence, or the mark would refuse the log.
      if (group.length > 0 || copied === 0) append(group);
      yield { fsync: fd };
      // Read the new file back: every batch verifies and it holds exactly what was written.
      checkFd = fs.openSync(temp, 'r');
      check = new LogStore(temp, checkFd, this.batchKey, this.mark);
      check.replayDigest = sha256Stream();
      yield* check.replaySteps({ useCheckpoint: false });
      const bad = (what: string) => integrityError(`the compacted store failed verification (${what}); the store is unchanged`, { file: temp });
      if (check.end !== end || check.fileSize !== end) throw bad('length');
      if (check.sequence !== sequence && end !== MAGIC.length) throw bad('sequence');
      if (check.index.size !== copied) throw bad('record count');
      if (!check.replayDigest.digest().equals(written.digest())) throw bad('contents');
      // From here to the rename nothing yields: carry over what was written meanwhile.
      let carried = 0;
      if (this.end > snapshotEnd) {
        const tailStart = end;
        const tail = new LogReader(this.fd, this.end);
        const tailDigest = sha256Stream();
        for (let at = snapshotEnd; at < this.end;) {
          const batch = this.readBatch(tail, at);
          if (batch === 'torn') throw integrityError(`store file ${this.file} ended inside a batch while compacting`, { offset: at });
          append(
            batch.ops.map((op): EncodedOp => {
              if ('deleted' in op) return { id: Buffer.from(op.id) };
              const sealed = Buffer.from(batch.body.subarray(op.bodyAt, op.bodyAt + op.length));
              tailDigest.update(op.id);
              tailDigest.update(sealed);
              return { id: Buffer.from(op.id), sealed };
            }),
          );
          at = batch.next;
          carried++;
        }
        fs.fsyncSync(fd);
        check.replayDigest = sha256Stream();
        const reached = runToEnd(check.replayFrom(new LogReader(checkFd, end), tailStart));
        if (reached !== end || check.sequence !== sequence || !check.replayDigest.digest().equals(tailDigest.digest())) throw bad('carried writes');
        check.end = end;
      }
      fs.closeSync(fd);
      fd = undefined;
      fs.closeSync(checkFd);
      checkFd = undefined;
      // The old checkpoint describes the old log (it would not match anyway); drop it first.
      this.generation++;
      removeCheckpoint(dir);
      fs.renameSync(temp, this.file);
      committed = true;
      this.compactionStats.copiedRecords = copied;
      this.compactionStats.carriedBatches = carried;
      syncDir(dir);
    } catch (error) {
      throw fromSystemError(error, 'compacting the store');
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
      if (checkFd !== undefined) fs.closeSync(checkFd);
      if (!committed) fs.rmSync(temp, { force: true });
    }
    // The new log is in place; the old one is gone. From here on nothing may fail the caller.
    // Closing the last descriptor of the old (unlinked) log frees its pages: tens of
    // milliseconds for a large log, so that runs on the thread pool.
    fs.close(this.fd, () => undefined);
    this.fd = fs.openSync(this.file, 'r+');
    this.index = check.index;
    this.end = end;
    this.fileSize = end;
    this.sequence = sequence;
    this.lastBatchStart = check.lastBatchStart;
    this.deadBytes = 0;
    this.checkpointEnd = 0;
    this.report.tornTailBytes = 0;
    this.mark.write(sequence, { sync: true });
  }

  close(): void {
    if (this.closed) return;
    this.generation++; // background work stops at its next step
    try {
      // Best effort: a checkpoint only saves the next open time.
      if (this.uncheckpointedBytes >= STORE_CHECKPOINT_CLOSE_BYTES) this.checkpoint();
    } catch {
      /* the next close tries again */
    }
    this.closed = true;
    this.mark.close();
    fs.closeSync(this.fd);
  }
}
