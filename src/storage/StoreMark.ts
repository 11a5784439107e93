import fs from 'node:fs';
import path from 'node:path';
import { constantTimeEqual, hmacSha256 } from '../crypto/mac.js';
import { fromSystemError } from '../errors.js';
import { FILE_MODE, syncDir, writeAll } from './files.js';

/**
 * The store's high-water mark: the last batch sequence this node acknowledged, kept outside
 * the log so a log cut at a batch boundary or replaced with an older copy is noticed.
 *
 *   file = slot slot            (each SLOT_BYTES apart, so a torn write spoils at most one)
 *   slot = MAGIC(8) | sequence u64 | tag(16)
 *   tag  = HMAC(batchKey, "mark" | sequence)[0..16]
 *
 * Sequence s goes to slot s % 2 (both slots when the owner moves the mark back); the higher
 * valid slot wins. The mark is written after the
 * log's fdatasync and without one of its own: after a power cut it may lag the log (accepted:
 * a lagging mark only narrows detection), but it can never run ahead of what the log holds.
 * A process kill loses nothing from the page cache, so kills and cuts are always detected.
 */
const MAGIC = Buffer.from('KNMARK01', 'ascii');
const SLOT_BYTES = 512;
const RECORD_BYTES = 8 + 8 + 16;

function tag(batchKey: Buffer, sequence: bigint): Buffer {
  const input = Buffer.alloc(4 + 8);
  input.write('mark', 0, 'ascii');
  input.writeBigUInt64BE(sequence, 4);
  return hmacSha256(batchKey, input).subarray(0, 16);
}

function encode(batchKey: Buffer, sequence: bigint): Buffer {
  const record = Buffer.alloc(RECORD_BYTES);
  MAGIC.copy(record, 0);
  record.writeBigUInt64BE(sequence, 8);
  tag(batchKey, sequence).copy(record, 16);
  return record;
}

export class StoreMark {
  static readonly FILE = 'store.mark';

  private constructor(
    private readonly file: string,
    private fd: number | null,
    private readonly batchKey: Buffer,
    /** The highest valid sequence found, or null (no file, or no valid slot). */
    private current: bigint | null,
  ) {}

  /** Create the mark at sequence 0 (a new, empty store). */
  static create(dir: string, batchKey: Buffer): void {
    const file = path.join(dir, StoreMark.FILE);
    const fd = fs.openSync(file, 'w', FILE_MODE);
    try {
      writeAll(fd, encode(batchKey, 0n), 0);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    syncDir(dir);
  }

  /** Read the mark. A missing file gives a mark with no sequence; it is created on first write. */
  static open(dir: string, batchKey: Buffer): StoreMark {
    const file = path.join(dir, StoreMark.FILE);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r+');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(error, `opening ${file}`);
      return new StoreMark(file, null, batchKey, null);
    }
    let best: bigint | null = null;
    for (const slot of [0, 1]) {
      const record = Buffer.alloc(RECORD_BYTES);
      if (fs.readSync(fd, record, 0, RECORD_BYTES, slot * SLOT_BYTES) !== RECORD_BYTES) continue;
      if (!record.subarray(0, 8).equals(MAGIC)) continue;
      const sequence = record.readBigUInt64BE(8);
      if (!constantTimeEqual(record.subarray(16), tag(batchKey, sequence))) continue;
      if (best === null || sequence > best) best = sequence;
    }
    return new StoreMark(file, fd, batchKey, best);
  }

  get sequence(): bigint | null {
    return this.current;
  }

  /**
   * Record that the log holds batch `sequence`. Never fails the caller: the batch is already
   * durable, and a mark that lags is only weaker, never wrong.
   */
  write(sequence: bigint, options: { sync?: boolean } = {}): void {
    try {
      // Not O_APPEND: positional writes must land in their slot.
      this.fd ??= fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT, FILE_MODE);
      const record = encode(this.batchKey, sequence);
      // Moving the mark back (an older state the owner accepted) must overwrite both slots.
      const slots = this.current !== null && sequence < this.current ? [0, 1] : [Number(sequence % 2n)];
      for (const slot of slots) writeAll(this.fd, record, slot * SLOT_BYTES);
      if (options.sync) fs.fdatasyncSync(this.fd);
      this.current = sequence;
    } catch {
      /* best effort, see above */
    }
  }

  close(): void {
    if (this.fd !== null) {
      try {
        fs.fdatasyncSync(this.fd);
      } catch {
        /* best effort */
      }
      fs.closeSync(this.fd);
    }
  }
}
