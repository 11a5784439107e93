import fs from 'node:fs';
import path from 'node:path';
import { AEAD_TAG_BYTES, open, seal } from '../crypto/aead.js';
import { hkdf } from '../crypto/kdf.js';
import { constantTimeEqual, hmacSha256, hmacSha256Stream } from '../crypto/mac.js';
import { KeynodeError, fromSystemError } from '../errors.js';
import { STORE_COMPACT_DEAD_RATIO, STORE_COMPACT_MIN_BYTES, STORE_MAX_RECORD_BYTES } from '../constants.js';
import { FILE_MODE, syncDir } from './files.js';
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
 * (invalid tag): only the first is cut off; damage is reported and nothing is truncated.
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

export class LogStore {
  private readonly index = new RecordIndex();
  private end: number;
  private sequence: bigint;
  private deadBytes = 0;
  private closed = false;

  private constructor(
    readonly file: string,
    private fd: number,
    private readonly batchKey: Buffer,
    end: number,
    sequence: bigint,
  ) {
    this.end = end;
    this.sequence = sequence;
  }

  /** Derive the batch-authentication key from the node's master secret. */
  static batchKeyFrom(masterSecret: Uint8Array): Buffer {
    return hkdf(masterSecret, 'keynode/store/batch-mac');
  }

  static exists(dir: string): boolean {
    return fs.existsSync(path.join(dir, STORE_FILE));
  }

  /** Create an empty store file (fails if one exists). */
  static create(dir: string): void {
    const file = path.join(dir, STORE_FILE);
    try {
      const fd = fs.openSync(file, 'wx', FILE_MODE);
      try {
        fs.writeSync(fd, MAGIC);
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
   * Open and verify the log, rebuilding the index. A batch torn by a crash at the end of the
   * file is cut off; any other damage fails with ERR_INTEGRITY.
   */
  static open(dir: string, batchKey: Buffer): LogStore {
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
    try {
      const store = new LogStore(file, fd, batchKey, 0, 0n);
      store.replay();
      return store;
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }

  private replay(): void {
    const size = fs.fstatSync(this.fd).size;
    const reader = new LogReader(this.fd, size);
    const magic = reader.read(0, MAGIC.length);
    if (!magic || !magic.equals(MAGIC)) throw integrityError(`store file ${this.file} has a damaged header`);
    let offset = MAGIC.length;
    while (offset < size) {
      const result = this.replayBatch(reader, offset);
      if (result === 'torn') {
        // A crash during the last append: that batch was never acknowledged. Cut it off.
        fs.ftruncateSync(this.fd, offset);
        fs.fdatasyncSync(this.fd);
        break;
      }
      offset = result;
    }
    this.end = Math.min(offset, size);
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
    const mac = hmacSha256Stream(this.batchKey);
    mac.update(lengthBytes);
    const sequence = body.readBigUInt64BE(0);
    const opCount = body.readUInt32BE(8);
    mac.update(body.subarray(0, 12));
    const pending: Array<{ key: string; offset: number; length: number } | { key: string; deleted: true }> = [];
    let cursor = 12;
    const fail = (): never => {
      throw integrityError(`store file ${this.file} is damaged at byte ${start}`, where);
    };
    for (let i = 0; i < opCount; i++) {
      if (cursor + 1 + RECORD_ID_BYTES > bodyLength) fail();
      const kind = body[cursor]!;
      const id = body.subarray(cursor + 1, cursor + 1 + RECORD_ID_BYTES);
      mac.update(body.subarray(cursor, cursor + 1 + RECORD_ID_BYTES));
      cursor += 1 + RECORD_ID_BYTES;
      const key = RecordIndex.keyOf(id);
      if (kind === OP_DELETE) {
        pending.push({ key, deleted: true });
        continue;
      }
      if (kind !== OP_PUT || cursor + 4 > bodyLength) fail();
      const valueLength = body.readUInt32BE(cursor);
      if (valueLength < AEAD_TAG_BYTES || cursor + 4 + valueLength > bodyLength) fail();
      mac.update(body.subarray(cursor, cursor + 4));
      mac.update(body.subarray(cursor + 4 + valueLength - AEAD_TAG_BYTES, cursor + 4 + valueLength));
      pending.push({ key, offset: start + BATCH_PREFIX_BYTES + cursor + 4, length: valueLength });
      cursor += 4 + valueLength;
    }
    if (cursor !== bodyLength) fail();
    if (!constantTimeEqual(mac.digest(), body.subarray(bodyLength, bodyLength + MAC_BYTES))) fail();
    if (sequence !== this.sequence + 1n) {
      throw integrityError(`store file ${this.file} has a missing or reordered batch at byte ${start}`, where);
    }
    this.sequence = sequence;
    for (const op of pending) {
      if ('deleted' in op) this.index.delete(op.key);
      else this.index.set(op.key, op.offset, op.length);
    }
    return start + BATCH_PREFIX_BYTES + bodyLength + MAC_BYTES;
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
      let written = 0;
      while (written < batch.length) written += fs.writeSync(this.fd, batch, written, batch.length - written, start + written);
      fs.fdatasyncSync(this.fd);
    } catch (error) {
      // Take the partial batch back off so the file ends on a whole batch; nothing changed.
      try {
        fs.ftruncateSync(this.fd, start);
      } catch {
        /* the next open cuts the torn tail instead */
      }
      throw fromSystemError(error, 'writing to the store');
    }
    this.sequence = sequence;
    this.end = start + batch.length;
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

  /** Whether enough of the log is dead (overwritten or deleted records) to be worth compacting. */
  get shouldCompact(): boolean {
    return this.end >= STORE_COMPACT_MIN_BYTES && this.deadBytes / this.end >= STORE_COMPACT_DEAD_RATIO;
  }

  /**
   * Rewrite the log with live records only. Values are copied sealed as they are (no key is
   * needed to move them); the new file replaces the old one by an atomic rename.
   */
  compact(): void {
    this.assertOpen();
    const dir = path.dirname(this.file);
    const temp = `${this.file}.compact`;
    const entries = [...this.index.entries()].sort((a, b) => a[1] - b[1]);
    const fd = fs.openSync(temp, 'w', FILE_MODE);
    const newIndex: Array<[string, number, number]> = [];
    let end = 0;
    let sequence = 0n;
    try {
      fs.writeSync(fd, MAGIC, 0, MAGIC.length, 0);
      end = MAGIC.length;
      const maxBatchBytes = 16 * 1024 * 1024;
      let i = 0;
      while (i < entries.length) {
        const group: Array<[string, Buffer]> = [];
        let groupBytes = 0;
        while (i < entries.length && (group.length === 0 || groupBytes < maxBatchBytes)) {
          const [key, offset, length] = entries[i]!;
          const sealed = Buffer.allocUnsafe(length);
          fs.readSync(this.fd, sealed, 0, length, offset);
          group.push([key, sealed]);
          groupBytes += length;
          i++;
        }
        sequence += 1n;
        const records = group.map(([key, sealed]) => ({ id: Buffer.from(key, 'latin1'), sealed }));
        const { batch, valueOffsets } = encodeBatch(end, sequence, records, this.batchKey);
        group.forEach(([key, sealed], j) => newIndex.push([key, end + valueOffsets[j]!, sealed.length]));
        fs.writeSync(fd, batch, 0, batch.length, end);
        end += batch.length;
      }
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(temp, this.file);
      syncDir(dir);
    } catch (error) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already closed */
      }
      fs.rmSync(temp, { force: true });
      throw fromSystemError(error, 'compacting the store');
    }
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, 'r+');
    this.index.clear();
    for (const [key, offset, length] of newIndex) this.index.set(key, offset, length);
    this.end = end;
    this.sequence = sequence;
    this.deadBytes = 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}
