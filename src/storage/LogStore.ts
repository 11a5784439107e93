import fs from 'node:fs';
import path from 'node:path';
import { AEAD_TAG_BYTES, open, seal } from '../crypto/aead.js';
import { hkdf } from '../crypto/kdf.js';
import { constantTimeEqual, hmacSha256, hmacSha256Stream } from '../crypto/mac.js';
import { sha256Stream } from '../crypto/hash.js';
import { KeynodeError, fromSystemError } from '../errors.js';
import { STORE_COMPACT_BATCH_BYTES, STORE_COMPACT_DEAD_RATIO, STORE_COMPACT_MIN_BYTES, STORE_COMPACT_SPARE_BYTES, STORE_MAX_RECORD_BYTES } from '../constants.js';
import { FILE_MODE, syncDir, writeAll, writeFileAtomic } from './files.js';
import { StoreMark } from './StoreMark.js';
import { RECORD_ID_BYTES, type Keyspace } from './Keyspace.js';
import { RecordIndex } from './RecordIndex.js';

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
  | { keyspace: Keyspace; name: string; delete: true };

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

export class LogStore {
  private readonly index = new RecordIndex();
  private end = MAGIC.length;
  /** The file's real size: `end` plus any torn tail not yet set aside. */
  private fileSize = MAGIC.length;
  private sequence = 0n;
  private deadBytes = 0;
  private closed = false;
  /** The torn tail as opened; bytes there that differ later were written by another process. */
  private tornTail: Buffer = Buffer.alloc(0);
  readonly report: StoreOpenReport = { tornTailBytes: 0 };

  private constructor(
    readonly file: string,
    private fd: number,
    private readonly batchKey: Buffer,
    private readonly mark: StoreMark,
  ) {}

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
      StoreMark.create(dir, batchKey);
      const fd = fs.openSync(file, 'wx', FILE_MODE);
      try {
        writeAll(fd, MAGIC, 0);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
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
      store.replay();
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
      throw integrityError(`store file ${this.file} has no high-water mark (${StoreMark.FILE} is missing or damaged), so a cut cannot be ruled out; ${remedy}`, { file: this.file });
    }
    throw integrityError(
      `store file ${this.file} ends at change ${this.sequence} but this node had written change ${marked}: it was cut short or replaced with an older copy; ${remedy}`,
      { file: this.file, logSequence: String(this.sequence), markSequence: String(marked) },
    );
  }

  private replay(): void {
    const size = fs.fstatSync(this.fd).size;
    const reader = new LogReader(this.fd, size);
    const magic = reader.read(0, MAGIC.length);
    if (!magic || !magic.equals(MAGIC)) throw integrityError(`store file ${this.file} has a damaged header`);
    let offset = MAGIC.length;
    while (offset < size) {
      const result = this.replayBatch(reader, offset);
      if (result === 'torn') break; // a crash during the last append: never acknowledged
      offset = result;
    }
    this.end = Math.min(offset, size);
    this.fileSize = size;
    this.report.tornTailBytes = size - this.end;
    this.tornTail = Buffer.from(reader.read(this.end, size - this.end) ?? Buffer.alloc(0));
    this.deadBytes = Math.max(0, this.end - MAGIC.length - this.index.liveBytes());
  }

  /** Verify one batch and apply it to the index; returns the next offset, or 'torn'. */
  private replayBatch(reader: LogReader, start: number): number | 'torn' {
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
    const sequence = body.readBigUInt64BE(0);
    // The first batch continues the sequence of the log it was compacted from; its length tag
    // binds it to this offset, so batches cannot be dropped from the front.
    const expected = start === MAGIC.length ? sequence : this.sequence + 1n;
    if (sequence < 1n || sequence !== expected) {
      throw integrityError(`store file ${this.file} has a missing or reordered batch at byte ${start}`, where);
    }
    this.sequence = sequence;
    for (const op of ops) {
      if ('deleted' in op) this.index.delete(op.key);
      else this.index.set(op.key, op.offset, op.length);
    }
    return next;
  }

  /** Parse a batch body and check its MAC; the ops it applies, or null if it does not verify. */
  private verifyBody(
    body: Buffer,
    bodyLength: number,
    lengthBytes: Buffer,
    bodyOffset: number,
  ): Array<{ key: string; offset: number; length: number } | { key: string; deleted: true }> | null {
    const mac = hmacSha256Stream(this.batchKey);
    mac.update(lengthBytes);
    const opCount = body.readUInt32BE(8);
    mac.update(body.subarray(0, 12));
    const ops: Array<{ key: string; offset: number; length: number } | { key: string; deleted: true }> = [];
    let cursor = 12;
    for (let i = 0; i < opCount; i++) {
      if (cursor + 1 + RECORD_ID_BYTES > bodyLength) return null;
      const kind = body[cursor]!;
      const id = body.subarray(cursor + 1, cursor + 1 + RECORD_ID_BYTES);
      mac.update(body.subarray(cursor, cursor + 1 + RECORD_ID_BYTES));
      cursor += 1 + RECORD_ID_BYTES;
      const key = RecordIndex.keyOf(id);
      if (kind === OP_DELETE) {
        ops.push({ key, deleted: true });
        continue;
      }
      if (kind !== OP_PUT || cursor + 4 > bodyLength) return null;
      const valueLength = body.readUInt32BE(cursor);
      if (valueLength < AEAD_TAG_BYTES || cursor + 4 + valueLength > bodyLength) return null;
      mac.update(body.subarray(cursor, cursor + 4));
      mac.update(body.subarray(cursor + 4 + valueLength - AEAD_TAG_BYTES, cursor + 4 + valueLength));
      ops.push({ key, offset: bodyOffset + cursor + 4, length: valueLength });
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
    return this.index.has(RecordIndex.keyOf(keyspace.recordId(name)));
  }

  /** The value of a record, undefined if absent; ERR_INTEGRITY if its bytes were altered. */
  get(keyspace: Keyspace, name: string): Buffer | undefined {
    this.assertOpen();
    const id = keyspace.recordId(name);
    const location = this.index.get(RecordIndex.keyOf(id));
    if (!location) return undefined;
    const [offset, length] = location;
    const sealed = Buffer.allocUnsafe(length);
    let got: number;
    try {
      got = fs.readSync(this.fd, sealed, 0, length, offset);
    } catch (error) {
      throw fromSystemError(error, 'reading the store');
    }
    const value = got === length ? open(keyspace.encKey, sealed, id) : null;
    if (value === null) throw integrityError('a stored record failed its integrity check', { offset });
    return value;
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

  /** Apply puts and deletes as one atomic, durable batch. Returns once it is on disk. */
  write(ops: readonly BatchOp[]): void {
    this.assertOpen();
    if (ops.length === 0) return;
    const sequence = this.sequence + 1n;
    const records = ops.map((op): EncodedOp => {
      const id = op.keyspace.recordId(op.name);
      return 'delete' in op ? { id } : { id, sealed: seal(op.keyspace.encKey, op.value, id) };
    });
    const start = this.end;
    const { batch, valueOffsets } = encodeBatch(start, sequence, records, this.batchKey);
    try {
      this.assertUnchanged();
      this.setAsideTornTail();
    } catch (error) {
      throw fromSystemError(error, 'writing to the store');
    }
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
    this.end = start + batch.length;
    this.fileSize = this.end;
    this.mark.write(sequence);
    records.forEach((record, i) => {
      const key = RecordIndex.keyOf(record.id);
      this.deadBytes += record.sealed ? this.index.set(key, start + valueOffsets[i]!, record.sealed.length) : this.index.delete(key);
    });
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
    for (const [key] of this.index.entries()) yield Buffer.from(key, 'latin1');
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
   * does not start without free space for the live data.
   */
  compact(options: { sequenceAfter?: bigint } = {}): void {
    this.assertOpen();
    const dir = path.dirname(this.file);
    const temp = `${this.file}.compact`;
    const entries = [...this.index.entries()].sort((a, b) => a[1] - b[1]);
    const liveBytes = entries.reduce((sum, [, , length]) => sum + length, 0);
    // Ids, kinds, lengths and per-batch framing come on top of the sealed values.
    const needed = MAGIC.length + liveBytes + entries.length * (1 + RECORD_ID_BYTES + 4) + STORE_COMPACT_SPARE_BYTES;
    try {
      this.assertUnchanged();
      this.setAsideTornTail();
      const space = fs.statfsSync(dir);
      const available = space.bavail * space.bsize;
      if (available < needed) {
        throw new KeynodeError('ERR_NO_SPACE', `not enough free space to compact the store (${needed} bytes needed, ${available} free); the store is unchanged`, { needed, available });
      }
    } catch (error) {
      throw fromSystemError(error, 'compacting the store');
    }
    const newIndex: Array<[string, number, number]> = [];
    const written = sha256Stream();
    let end = MAGIC.length;
    let sequence = options.sequenceAfter !== undefined && options.sequenceAfter > this.sequence ? options.sequenceAfter : this.sequence;
    let fd: number | undefined;
    try {
      fs.rmSync(temp, { force: true });
      fd = fs.openSync(temp, 'wx', FILE_MODE);
      writeAll(fd, MAGIC, 0);
      let i = 0;
      while (i < entries.length) {
        const group: Array<[string, Buffer]> = [];
        let groupBytes = 0;
        while (i < entries.length && (group.length === 0 || groupBytes < STORE_COMPACT_BATCH_BYTES)) {
          const [key, offset, length] = entries[i]!;
          const sealed = Buffer.allocUnsafe(length);
          if (fs.readSync(this.fd, sealed, 0, length, offset) !== length) throw integrityError(`store file ${this.file} ended inside a record while compacting`, { offset });
          group.push([key, sealed]);
          written.update(sealed);
          groupBytes += length;
          i++;
        }
        sequence += 1n;
        const records = group.map(([key, sealed]) => ({ id: Buffer.from(key, 'latin1'), sealed }));
        const { batch, valueOffsets } = encodeBatch(end, sequence, records, this.batchKey);
        group.forEach(([key, sealed], j) => newIndex.push([key, end + valueOffsets[j]!, sealed.length]));
        writeAll(fd, batch, end);
        end += batch.length;
      }
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fd = undefined;
      this.verifyCompacted(temp, { end, sequence, newIndex, digest: written.digest() });
      fs.renameSync(temp, this.file);
      syncDir(dir);
    } catch (error) {
      if (fd !== undefined) fs.closeSync(fd);
      fs.rmSync(temp, { force: true });
      throw fromSystemError(error, 'compacting the store');
    }
    // The new log is in place; the old one is gone. From here on nothing may fail the caller.
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, 'r+');
    this.index.clear();
    for (const [key, offset, length] of newIndex) this.index.set(key, offset, length);
    this.end = end;
    this.fileSize = end;
    this.sequence = sequence;
    this.deadBytes = 0;
    this.report.tornTailBytes = 0;
    this.mark.write(sequence, { sync: true });
  }

  /** Read a freshly written log back: every batch verifies, and it holds exactly what was written. */
  private verifyCompacted(file: string, expected: { end: number; sequence: bigint; newIndex: Array<[string, number, number]>; digest: Buffer }): void {
    const fd = fs.openSync(file, 'r');
    try {
      const check = new LogStore(file, fd, this.batchKey, this.mark);
      check.replay();
      const bad = (what: string) => integrityError(`the compacted store failed verification (${what}); the store is unchanged`, { file });
      if (check.end !== expected.end || check.fileSize !== expected.end) throw bad('length');
      if (check.sequence !== expected.sequence) throw bad('sequence');
      if (check.index.size !== expected.newIndex.length) throw bad('record count');
      const readBack = sha256Stream();
      for (const [key, offset, length] of expected.newIndex) {
        const location = check.index.get(key);
        if (!location || location[0] !== offset || location[1] !== length) throw bad('index');
        const value = Buffer.allocUnsafe(length);
        if (fs.readSync(fd, value, 0, length, offset) !== length) throw bad('short read');
        readBack.update(value);
      }
      if (!readBack.digest().equals(expected.digest)) throw bad('contents');
    } finally {
      fs.closeSync(fd);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.mark.close();
    fs.closeSync(this.fd);
  }
}
