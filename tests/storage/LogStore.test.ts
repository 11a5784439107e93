import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { Keyspace } from '../../src/storage/Keyspace.js';
import { LogStore, STORE_FILE, TORN_TAIL_PREFIX } from '../../src/storage/LogStore.js';
import { StoreMark } from '../../src/storage/StoreMark.js';
import { randomBytes } from '../../src/crypto/random.js';
import { isKeynodeError } from '../../src/errors.js';
import { tempDir } from '../helpers/index.js';

const batchKey = randomBytes(32);
const keyspace = new Keyspace(randomBytes(32));

function freshStore(): { dir: string; store: LogStore } {
  const dir = tempDir();
  LogStore.create(dir, batchKey);
  return { dir, store: LogStore.open(dir, batchKey) };
}

function expectIntegrityError(fn: () => unknown): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(isKeynodeError(caught, 'ERR_INTEGRITY')).toBe(true);
}

afterEach(() => vi.restoreAllMocks());

describe('LogStore', () => {
  it('stores, overwrites and deletes records, durably across reopen', () => {
    const { dir, store } = freshStore();
    store.write([
      { keyspace, name: 'a', value: Buffer.from('one') },
      { keyspace, name: 'b', value: Buffer.from('two') },
    ]);
    store.write([
      { keyspace, name: 'a', value: Buffer.from('uno') },
      { keyspace, name: 'b', delete: true },
    ]);
    expect(store.get(keyspace, 'a')?.toString()).toBe('uno');
    expect(store.get(keyspace, 'b')).toBeUndefined();
    store.close();
    const again = LogStore.open(dir, batchKey);
    expect(again.get(keyspace, 'a')?.toString()).toBe('uno');
    expect(again.has(keyspace, 'b')).toBe(false);
    expect(again.recordCount).toBe(1);
    again.close();
  });

  it('keeps keyspaces apart: the same name in another keyspace is another record', () => {
    const { store } = freshStore();
    const other = new Keyspace(randomBytes(32));
    store.write([{ keyspace, name: 'x', value: Buffer.from('mine') }]);
    expect(store.get(other, 'x')).toBeUndefined();
    store.close();
  });

  it('round-trips any bytes under any name (property)', () => {
    const { dir, store } = freshStore();
    const expected = new Map<string, Buffer>();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 2048 })), { minLength: 1, maxLength: 8 }), (pairs) => {
        store.write(pairs.map(([name, value]) => ({ keyspace, name, value })));
        for (const [name, value] of pairs) expected.set(name, Buffer.from(value));
        for (const [name] of pairs) expect(store.get(keyspace, name)?.equals(expected.get(name)!)).toBe(true);
      }),
      { numRuns: 100 },
    );
    store.close();
    const again = LogStore.open(dir, batchKey);
    for (const [name, value] of expected) expect(again.get(keyspace, name)?.equals(value)).toBe(true);
    again.close();
  });

  it('never writes names or values in the clear', () => {
    const { dir, store } = freshStore();
    store.write([{ keyspace, name: 'canary-name-7f3a', value: Buffer.from('canary-value-91bc') }]);
    store.close();
    const bytes = fs.readFileSync(path.join(dir, STORE_FILE));
    expect(bytes.includes(Buffer.from('canary-name-7f3a'))).toBe(false);
    expect(bytes.includes(Buffer.from('canary-value-91bc'))).toBe(false);
  });

  it('leaves out a batch torn by a crash, never shortens the file on open, and sets the tail aside on the next write', () => {
    const { dir, store } = freshStore();
    store.write([{ keyspace, name: 'kept', value: Buffer.from('yes') }]);
    const size = store.sizeBytes;
    // The mark as a crash during the next append would leave it: that batch was never acknowledged.
    const markBefore = fs.readFileSync(path.join(dir, StoreMark.FILE));
    store.write([{ keyspace, name: 'torn', value: Buffer.alloc(1000, 7) }]);
    store.close();
    const file = path.join(dir, STORE_FILE);
    for (const cut of [size + 3, size + 500, fs.statSync(file).size - 1]) {
      const copy = tempDir();
      const bytes = fs.readFileSync(file).subarray(0, cut);
      fs.writeFileSync(path.join(copy, STORE_FILE), bytes);
      fs.writeFileSync(path.join(copy, StoreMark.FILE), markBefore);
      const reopened = LogStore.open(copy, batchKey);
      expect(reopened.get(keyspace, 'kept')?.toString()).toBe('yes');
      expect(reopened.has(keyspace, 'torn')).toBe(false);
      expect(reopened.sizeBytes).toBe(size);
      expect(reopened.report.tornTailBytes).toBe(cut - size);
      expect(fs.statSync(path.join(copy, STORE_FILE)).size).toBe(cut); // opening changed nothing
      reopened.write([{ keyspace, name: 'after', value: Buffer.from('ok') }]);
      const aside = reopened.report.tornTailSetAsideTo!;
      expect(aside.startsWith(TORN_TAIL_PREFIX)).toBe(true);
      expect(fs.readFileSync(path.join(copy, aside)).equals(bytes.subarray(size))).toBe(true);
      reopened.close();
      expect(LogStore.open(copy, batchKey).get(keyspace, 'after')?.toString()).toBe('ok');
    }
  });

  it('refuses a log cut at a batch boundary or replaced by an older copy, unless told to accept it', () => {
    const { dir, store } = freshStore();
    const file = path.join(dir, STORE_FILE);
    const boundaries: number[] = [];
    for (let i = 0; i < 5; i++) {
      store.write([{ keyspace, name: `k${i}`, value: Buffer.from(`v${i}`) }]);
      boundaries.push(store.sizeBytes);
    }
    const older = fs.readFileSync(file).subarray(0, boundaries[2]);
    store.write([{ keyspace, name: 'last', value: Buffer.from('z') }]);
    store.close();
    const full = fs.readFileSync(file);
    for (const cut of [8, ...boundaries]) {
      fs.writeFileSync(file, full.subarray(0, cut));
      expectIntegrityError(() => LogStore.open(dir, batchKey));
    }
    fs.writeFileSync(file, older);
    expectIntegrityError(() => LogStore.open(dir, batchKey));
    // Without its mark the log cannot be vouched for either.
    fs.writeFileSync(file, full);
    fs.renameSync(path.join(dir, StoreMark.FILE), path.join(dir, 'mark.saved'));
    expectIntegrityError(() => LogStore.open(dir, batchKey));
    fs.renameSync(path.join(dir, 'mark.saved'), path.join(dir, StoreMark.FILE));
    expect(LogStore.open(dir, batchKey).get(keyspace, 'last')?.toString()).toBe('z');
    // The owner's explicit word accepts the older copy and moves the mark to it.
    fs.writeFileSync(file, older);
    const accepted = LogStore.open(dir, batchKey, { acceptOlderState: true });
    expect(accepted.report.acceptedOlderState).toEqual({ logSequence: '3', markSequence: '6' });
    expect(accepted.get(keyspace, 'k1')?.toString()).toBe('v1');
    accepted.close();
    LogStore.open(dir, batchKey).close();
  });

  it('refuses to append when another process changed the log under it', () => {
    const { dir, store } = freshStore();
    store.write([{ keyspace, name: 'a', value: Buffer.from('1') }]);
    const other = LogStore.open(dir, batchKey);
    other.write([{ keyspace, name: 'b', value: Buffer.from('2') }]);
    expectIntegrityError(() => store.write([{ keyspace, name: 'c', value: Buffer.from('3') }]));
    other.compact(); // replaces the file: the first handle now points at an unlinked log
    const third = LogStore.open(dir, batchKey);
    expectIntegrityError(() => other.close() ?? store.write([{ keyspace, name: 'd', value: Buffer.from('4') }]));
    expect(third.get(keyspace, 'b')?.toString()).toBe('2');
    expect(third.has(keyspace, 'c')).toBe(false);
    third.close();
    store.close();
  });

  it('detects a flipped byte in a value on read, naming nothing secret', () => {
    const { dir, store } = freshStore();
    store.write([{ keyspace, name: 'v', value: Buffer.alloc(100, 1) }]);
    store.close();
    const file = path.join(dir, STORE_FILE);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 32 - 50]! ^= 0x01; // inside the sealed value, before the batch MAC
    fs.writeFileSync(file, bytes);
    const reopened = LogStore.open(dir, batchKey);
    expectIntegrityError(() => reopened.get(keyspace, 'v'));
    reopened.close();
  });

  it('detects a flipped byte in the framing when the store opens', () => {
    const { dir, store } = freshStore();
    store.write([{ keyspace, name: 'v', value: Buffer.from('x') }]);
    store.write([{ keyspace, name: 'w', value: Buffer.from('y') }]);
    store.close();
    const file = path.join(dir, STORE_FILE);
    const original = fs.readFileSync(file);
    // magic, batch length, length tag, sequence, a record id (after magic 8 + length 4 + tag 16 + sequence 8 + count 4 + kind 1).
    for (const offset of [0, 8 + 2, 8 + 4 + 7, 8 + 20 + 3, 8 + 20 + 8 + 4 + 1 + 5]) {
      const bytes = Buffer.from(original);
      bytes[offset]! ^= 0x10;
      fs.writeFileSync(file, bytes);
      expectIntegrityError(() => LogStore.open(dir, batchKey));
    }
  });

  it('reports a damaged batch length as damage, never as a torn tail to cut off', () => {
    const { dir, store } = freshStore();
    store.write([{ keyspace, name: 'a', value: Buffer.from('1') }]);
    const second = store.sizeBytes;
    store.write([{ keyspace, name: 'b', value: Buffer.from('2') }]);
    store.write([{ keyspace, name: 'c', value: Buffer.from('3') }]);
    store.close();
    const file = path.join(dir, STORE_FILE);
    const original = fs.readFileSync(file);
    for (const bit of [0, 8, 16, 24, 31]) {
      const bytes = Buffer.from(original);
      bytes.writeUInt32BE((bytes.readUInt32BE(second) ^ (1 << bit)) >>> 0, second); // length now runs past the end, or short
      fs.writeFileSync(file, bytes);
      expectIntegrityError(() => LogStore.open(dir, batchKey));
      expect(fs.statSync(file).size).toBe(original.length); // nothing was cut off
    }
  });

  it('treats a zero-filled tail (an append that never reached the disk) as torn', () => {
    const { dir, store } = freshStore();
    store.write([{ keyspace, name: 'a', value: Buffer.from('1') }]);
    const size = store.sizeBytes;
    store.close();
    const file = path.join(dir, STORE_FILE);
    fs.appendFileSync(file, Buffer.alloc(300));
    const reopened = LogStore.open(dir, batchKey);
    expect(reopened.get(keyspace, 'a')?.toString()).toBe('1');
    expect(reopened.sizeBytes).toBe(size);
    reopened.close();
  });

  it('detects a batch removed from the middle of the log', () => {
    const { dir, store } = freshStore();
    store.write([{ keyspace, name: 'a', value: Buffer.from('1') }]);
    const first = store.sizeBytes;
    store.write([{ keyspace, name: 'b', value: Buffer.from('2') }]);
    const second = store.sizeBytes;
    store.write([{ keyspace, name: 'c', value: Buffer.from('3') }]);
    store.close();
    const file = path.join(dir, STORE_FILE);
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, Buffer.concat([bytes.subarray(0, first), bytes.subarray(second)]));
    expectIntegrityError(() => LogStore.open(dir, batchKey));
  });

  it('refuses a store opened with another key', () => {
    const { dir, store } = freshStore();
    store.write([{ keyspace, name: 'a', value: Buffer.from('1') }]);
    store.close();
    expectIntegrityError(() => LogStore.open(dir, randomBytes(32)));
  });

  it('on a full disk fails with ERR_NO_SPACE, loses nothing and stays usable', () => {
    const { dir, store } = freshStore();
    store.write([{ keyspace, name: 'before', value: Buffer.from('safe') }]);
    const real = fs.writeSync;
    let calls = 0;
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, buffer: Uint8Array, offset?: number, length?: number, position?: number) => {
      calls++;
      if (calls === 1) return real(fd, buffer, offset, Math.floor((length ?? 0) / 2), position); // a short write
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    }) as typeof fs.writeSync);
    let caught: unknown;
    try {
      store.write([{ keyspace, name: 'during', value: Buffer.alloc(4000, 3) }]);
    } catch (error) {
      caught = error;
    }
    expect(isKeynodeError(caught, 'ERR_NO_SPACE')).toBe(true);
    vi.restoreAllMocks();
    expect(store.has(keyspace, 'during')).toBe(false);
    store.write([{ keyspace, name: 'after', value: Buffer.from('fine') }]);
    store.close();
    const again = LogStore.open(dir, batchKey);
    expect(again.get(keyspace, 'before')?.toString()).toBe('safe');
    expect(again.get(keyspace, 'after')?.toString()).toBe('fine');
    expect(again.has(keyspace, 'during')).toBe(false);
    again.close();
  });

  it('compaction survives short writes, and a disk that fills mid-way leaves the old log untouched', () => {
    const { dir, store } = freshStore();
    for (let i = 0; i < 40; i++) store.write([{ keyspace, name: `k${i % 8}`, value: Buffer.alloc(3000, i) }]);
    const file = path.join(dir, STORE_FILE);
    const before = fs.readFileSync(file);
    const real = fs.writeSync;
    // Every write is cut to half what was asked (a nearly full disk does that), then the disk is full.
    let budget = 6;
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, buffer: Uint8Array, offset?: number, length?: number, position?: number) => {
      if (budget-- <= 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      return real(fd, buffer, offset, Math.max(1, Math.floor((length ?? 0) / 2)), position);
    }) as typeof fs.writeSync);
    let caught: unknown;
    try {
      store.compact();
    } catch (error) {
      caught = error;
    }
    vi.restoreAllMocks();
    expect(isKeynodeError(caught, 'ERR_NO_SPACE')).toBe(true);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.existsSync(`${file}.compact`)).toBe(false);
    // Short writes alone are simply continued.
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, buffer: Uint8Array, offset?: number, length?: number, position?: number) =>
      real(fd, buffer, offset, Math.max(1, Math.floor((length ?? 0) / 3)), position)) as typeof fs.writeSync);
    store.compact();
    vi.restoreAllMocks();
    expect(fs.statSync(file).size).toBeLessThan(before.length / 3);
    store.close();
    const again = LogStore.open(dir, batchKey);
    for (let i = 32; i < 40; i++) expect(again.get(keyspace, `k${i % 8}`)?.equals(Buffer.alloc(3000, i))).toBe(true);
    again.close();
  });

  it('compaction does not start without free space for the live data', () => {
    const { dir, store } = freshStore();
    store.write([{ keyspace, name: 'a', value: Buffer.alloc(10_000, 1) }]);
    const before = fs.readFileSync(path.join(dir, STORE_FILE));
    const real = fs.statfsSync;
    vi.spyOn(fs, 'statfsSync').mockImplementation((target: fs.PathLike) => ({ ...real(target), bavail: 1, bsize: 4096 }));
    expect(() => store.compact()).toThrow(/not enough free space to compact/);
    vi.restoreAllMocks();
    expect(fs.readFileSync(path.join(dir, STORE_FILE)).equals(before)).toBe(true);
    store.close();
  });

  it('compacting a store with nothing live leaves a log that opens and keeps the sequence (in steps too)', async () => {
    for (const inSteps of [false, true]) {
      const { dir, store } = freshStore();
      store.write([{ keyspace, name: 'a', value: Buffer.from('x') }]);
      store.write([{ keyspace, name: 'a', delete: true }]);
      if (inSteps) await store.compactInSteps();
      else store.compact();
      expect(store.recordCount).toBe(0);
      store.close();
      // The mark says change 2 was written: the compacted log must still reach it.
      const reopened = LogStore.open(dir, batchKey);
      expect(reopened.recordCount).toBe(0);
      reopened.write([{ keyspace, name: 'b', value: Buffer.from('y') }]);
      reopened.close();
      const again = LogStore.open(dir, batchKey);
      expect(again.get(keyspace, 'b')?.toString()).toBe('y');
      again.verifyLog();
      again.close();
    }
  });

  it('compacts to live records only, keeping every value', () => {
    const { dir, store } = freshStore();
    for (let i = 0; i < 50; i++) store.write([{ keyspace, name: `k${i % 10}`, value: Buffer.alloc(1000, i) }]);
    store.write([{ keyspace, name: 'k9', delete: true }]);
    const before = store.sizeBytes;
    store.compact();
    expect(store.sizeBytes).toBeLessThan(before / 4);
    for (let i = 0; i < 9; i++) expect(store.get(keyspace, `k${i}`)?.equals(Buffer.alloc(1000, 40 + i))).toBe(true);
    expect(store.has(keyspace, 'k9')).toBe(false);
    store.write([{ keyspace, name: 'new', value: Buffer.from('x') }]);
    store.close();
    const again = LogStore.open(dir, batchKey);
    expect(again.recordCount).toBe(10);
    expect(again.get(keyspace, 'k3')?.equals(Buffer.alloc(1000, 43))).toBe(true);
    again.close();
  });
});

describe('LogStore.create', () => {
  it('refuses an existing store and leaves its high-water mark as it was', () => {
    const { dir, store } = freshStore();
    store.write([{ keyspace, name: 'a', value: Buffer.from('1') }]);
    store.close();
    const mark = fs.readFileSync(path.join(dir, 'store.mark'));
    expect(() => LogStore.create(dir, batchKey)).toThrow();
    expect(fs.readFileSync(path.join(dir, 'store.mark'))).toEqual(mark);
    LogStore.open(dir, batchKey).close();
  });
});
