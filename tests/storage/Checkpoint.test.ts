import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Keyspace } from '../../src/storage/Keyspace.js';
import { LogStore, STORE_FILE, type BatchOp } from '../../src/storage/LogStore.js';
import { CHECKPOINT_FILE } from '../../src/storage/Checkpoint.js';
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

/** Every name's value (hex) or absence, as the store answers. */
function contents(store: LogStore, names: Iterable<string>): Map<string, string | null> {
  return new Map([...names].map((name) => [name, store.get(keyspace, name)?.toString('hex') ?? null]));
}

function snapshotDir(dir: string): Map<string, string> {
  return new Map(fs.readdirSync(dir).map((name) => [name, fs.readFileSync(path.join(dir, name)).toString('base64')]));
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('index checkpoint', () => {
  it('opening from a checkpoint replays only the batches written after it', () => {
    const { dir, store } = freshStore();
    for (let i = 0; i < 200; i++) store.write([{ keyspace, name: `k${i}`, value: Buffer.from(`v${i}`) }]);
    store.write([{ keyspace, name: 'k7', delete: true }]);
    store.checkpoint();
    for (let i = 0; i < 5; i++) store.write([{ keyspace, name: `k${i}`, value: Buffer.from(`w${i}`) }]);
    store.close(); // a tail this small is not worth a new checkpoint at close
    const names = Array.from({ length: 200 }, (_, i) => `k${i}`);
    const reopened = LogStore.open(dir, batchKey);
    expect(reopened.openStats.checkpoint).toBe('used');
    expect(reopened.openStats.replayedBatches).toBe(5);
    expect(reopened.openStats.replayedOps).toBe(5);
    const full = LogStore.open(dir, batchKey, { useCheckpoint: false });
    expect(full.openStats.replayedBatches).toBe(206);
    expect(contents(reopened, names)).toEqual(contents(full, names));
    expect(reopened.get(keyspace, 'k3')?.toString()).toBe('w3');
    expect(reopened.has(keyspace, 'k7')).toBe(false);
    expect(reopened.stats()).toEqual(full.stats());
    reopened.verifyLog();
    reopened.close();
    full.close();
  });

  it('a checkpoint carried between two copies of a node directory is refused, even when both logs end alike', () => {
    const { dir, store } = freshStore();
    for (let i = 0; i < 50; i++) store.write([{ keyspace, name: `k${i}`, value: Buffer.from(`v${i}`) }]);
    store.checkpoint();
    store.close();
    const copy = tempDir();
    fs.cpSync(dir, copy, { recursive: true });
    // Both copies go on, differently, then end with the same delete-only batch (same bytes in both).
    const a = LogStore.open(dir, batchKey);
    const b = LogStore.open(copy, batchKey);
    expect(a.openStats.checkpoint).toBe('used');
    expect(b.openStats.checkpoint).toBe('ignored'); // a copy's log is another file: one full replay
    a.write([{ keyspace, name: 'only-a', value: Buffer.from('a') }]);
    b.write([{ keyspace, name: 'only-b', value: Buffer.from('b') }]);
    for (const store of [a, b]) {
      store.write([{ keyspace, name: 'k1', delete: true }]);
      store.checkpoint();
      store.close();
    }
    fs.copyFileSync(path.join(copy, CHECKPOINT_FILE), path.join(dir, CHECKPOINT_FILE));
    const reopened = LogStore.open(dir, batchKey);
    expect(reopened.openStats.checkpoint).toBe('ignored');
    expect(reopened.get(keyspace, 'only-a')?.toString()).toBe('a');
    expect(reopened.has(keyspace, 'only-b')).toBe(false);
    reopened.verifyLog();
    reopened.close();
  });

  it('writes a checkpoint at close once the log has grown enough, and opening never writes', () => {
    const { dir, store } = freshStore();
    const big = randomBytes(64 * 1024);
    for (let i = 0; i < 20; i++) store.write([{ keyspace, name: `big${i}`, value: big }]); // 1.25 MiB
    store.close();
    expect(fs.existsSync(path.join(dir, CHECKPOINT_FILE))).toBe(true);
    // A damaged checkpoint: opening ignores it, replays everything and changes no file...
    const file = path.join(dir, CHECKPOINT_FILE);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 5]! ^= 1;
    fs.writeFileSync(file, bytes);
    const before = snapshotDir(dir);
    const reopened = LogStore.open(dir, batchKey);
    expect(reopened.openStats.checkpoint).toBe('ignored');
    expect(reopened.openStats.replayedBatches).toBe(20);
    expect(snapshotDir(dir)).toEqual(before);
    // ...and the close after it writes a good one again.
    reopened.close();
    const again = LogStore.open(dir, batchKey);
    expect(again.openStats.checkpoint).toBe('used');
    expect(again.openStats.replayedBatches).toBe(0);
    expect(again.get(keyspace, 'big19')?.equals(big)).toBe(true);
    again.close();
  });

  it('never applies a checkpoint of another log: after compaction, a cut log, or another store', () => {
    const { dir, store } = freshStore();
    for (let i = 0; i < 50; i++) store.write([{ keyspace, name: `k${i % 10}`, value: Buffer.from(`v${i}`) }]);
    store.checkpoint();
    const oldCheckpoint = fs.readFileSync(path.join(dir, CHECKPOINT_FILE));
    store.compact();
    expect(fs.existsSync(path.join(dir, CHECKPOINT_FILE))).toBe(false); // compaction drops it
    store.write([{ keyspace, name: 'k1', value: Buffer.from('after') }]);
    store.close();
    const names = Array.from({ length: 10 }, (_, i) => `k${i}`);
    // The old log's checkpoint put back next to the compacted log.
    fs.writeFileSync(path.join(dir, CHECKPOINT_FILE), oldCheckpoint);
    const afterCompaction = LogStore.open(dir, batchKey);
    expect(afterCompaction.openStats.checkpoint).toBe('ignored');
    expect(afterCompaction.get(keyspace, 'k1')?.toString()).toBe('after');
    afterCompaction.checkpoint();
    const current = fs.readFileSync(path.join(dir, CHECKPOINT_FILE));
    afterCompaction.close();
    // A checkpoint made by another store (another key): ignored.
    const other = freshStore();
    other.store.write([{ keyspace, name: 'x', value: Buffer.from('y') }]);
    other.store.checkpoint();
    other.store.close();
    fs.copyFileSync(path.join(other.dir, CHECKPOINT_FILE), path.join(dir, CHECKPOINT_FILE));
    const foreign = LogStore.open(dir, batchKey);
    expect(foreign.openStats.checkpoint).toBe('ignored');
    expect(foreign.get(keyspace, 'k1')?.toString()).toBe('after');
    foreign.close();
    // The log cut back before the checkpoint's batch (the owner accepting an older copy).
    fs.writeFileSync(path.join(dir, CHECKPOINT_FILE), current);
    const log = fs.readFileSync(path.join(dir, STORE_FILE));
    const cut = log.subarray(0, log.length - 1 - (log.length - 8) / 2);
    fs.writeFileSync(path.join(dir, STORE_FILE), cut);
    let refused: unknown;
    try {
      LogStore.open(dir, batchKey);
    } catch (error) {
      refused = error;
    }
    expect(isKeynodeError(refused, 'ERR_INTEGRITY')).toBe(true); // the mark check is unchanged
    fs.writeFileSync(path.join(dir, STORE_FILE), log);
    const whole = LogStore.open(dir, batchKey);
    expect(whole.openStats.checkpoint).toBe('used');
    expect(contents(whole, names).size).toBe(10);
    whole.close();
  });

  it('with any ops, checkpoint point and damage, opening gives what a full replay gives (property)', () => {
    const op = fc.oneof(
      fc.record({ name: fc.integer({ min: 0, max: 30 }), value: fc.uint8Array({ maxLength: 40 }) }),
      fc.record({ name: fc.integer({ min: 0, max: 30 }), remove: fc.constant(true) }),
    );
    const damage = fc.oneof(
      fc.constant({ kind: 'none' as const }),
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.constant({ kind: 'foreign' as const }),
      fc.constant({ kind: 'stale' as const }),
    );
    const foreign = freshStore();
    foreign.store.write([{ keyspace, name: 'f', value: Buffer.from('f') }]);
    foreign.store.checkpoint();
    foreign.store.close();
    const foreignCheckpoint = fs.readFileSync(path.join(foreign.dir, CHECKPOINT_FILE));
    fc.assert(
      fc.property(fc.array(fc.array(op, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 25 }), fc.nat(), damage, (batches, pointSeed, hurt) => {
        const { dir, store } = freshStore();
        const point = pointSeed % batches.length;
        let stale: Buffer | undefined;
        batches.forEach((batch, i) => {
          store.write(
            batch.map((o): BatchOp => ('remove' in o ? { keyspace, name: `n${o.name}`, delete: true } : { keyspace, name: `n${o.name}`, value: o.value })),
          );
          if (i === 0) {
            store.checkpoint();
            stale = fs.readFileSync(path.join(dir, CHECKPOINT_FILE));
          }
          if (i === point) store.checkpoint();
        });
        if (hurt.kind === 'stale') {
          // A checkpoint of this log from before a compaction.
          store.compact();
          fs.writeFileSync(path.join(dir, CHECKPOINT_FILE), stale!);
        }
        store.close();
        const file = path.join(dir, CHECKPOINT_FILE);
        const bytes = fs.readFileSync(file);
        if (hurt.kind === 'flip') {
          bytes[hurt.at % bytes.length]! ^= 1 << hurt.bit;
          fs.writeFileSync(file, bytes);
        } else if (hurt.kind === 'truncate') fs.writeFileSync(file, bytes.subarray(0, hurt.at % bytes.length));
        else if (hurt.kind === 'foreign') fs.writeFileSync(file, foreignCheckpoint);
        const names = Array.from({ length: 31 }, (_, i) => `n${i}`);
        const opened = LogStore.open(dir, batchKey);
        const full = LogStore.open(dir, batchKey, { useCheckpoint: false });
        expect(opened.openStats.checkpoint).toBe(hurt.kind === 'none' ? 'used' : 'ignored');
        if (hurt.kind === 'none') expect(opened.openStats.replayedBatches).toBe(batches.length - 1 - point);
        expect(contents(opened, names)).toEqual(contents(full, names));
        expect(opened.stats()).toEqual(full.stats());
        opened.close();
        full.close();
      }),
      { numRuns: 60 },
    );
  });
});

describe('store write queue', () => {
  it('runs queued work one at a time, in order, whatever the earlier work did', async () => {
    const { store } = freshStore();
    const events: string[] = [];
    const slow = store.exclusive(async () => {
      events.push('a start');
      await new Promise((resolve) => setTimeout(resolve, 20));
      events.push('a end');
      throw new Error('a failed');
    });
    const next = store.exclusive(() => {
      events.push('b');
      store.write([{ keyspace, name: 'b', value: Buffer.from('1') }]);
      return 'b done';
    });
    const last = store.exclusive(async () => {
      events.push('c');
      return store.get(keyspace, 'b')?.toString();
    });
    await expect(slow).rejects.toThrow('a failed');
    await expect(next).resolves.toBe('b done');
    await expect(last).resolves.toBe('1');
    expect(events).toEqual(['a start', 'a end', 'b', 'c']);
    store.close();
  });
});

describe('compaction in steps', () => {
  function filledStore(records: number): { dir: string; store: LogStore } {
    const { dir, store } = freshStore();
    const value = randomBytes(64);
    for (const pass of [0, 1]) {
      for (let start = 0; start < records; start += 1000) {
        const ops: BatchOp[] = [];
        for (let i = start; i < Math.min(records, start + 1000); i++) if (pass === 0 || i % 2 === 0) ops.push({ keyspace, name: `r${i}`, value });
        store.write(ops);
      }
    }
    return { dir, store };
  }

  it('keeps the event loop turning while it runs (100k records)', async () => {
    const { dir, store } = filledStore(100_000);
    const before = store.stats();
    let turns = 0;
    let running = true;
    const turn = () => {
      turns++;
      if (running) setImmediate(turn);
    };
    setImmediate(turn);
    await store.compactInSteps();
    running = false;
    // One synchronous run lets no turn through; in steps it yields many times.
    expect(turns).toBeGreaterThan(20);
    const after = store.stats();
    expect(after.recordCount).toBe(before.recordCount);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.sizeBytes).toBeLessThan(before.sizeBytes);
    store.close();
    const reopened = LogStore.open(dir, batchKey, { useCheckpoint: false });
    expect(reopened.recordCount).toBe(100_000);
    reopened.close();
  });

  it('carries writes made during it into the new log, acknowledged at once', async () => {
    const { dir, store } = filledStore(20_000);
    const compaction = store.compactInSteps();
    await nextTurn();
    store.write([{ keyspace, name: 'r1', value: Buffer.from('overwritten') }]);
    await nextTurn();
    store.write([
      { keyspace, name: 'r2', delete: true },
      { keyspace, name: 'new', value: Buffer.from('added') },
    ]);
    expect(store.get(keyspace, 'r1')?.toString()).toBe('overwritten'); // visible before compaction ends
    expect(store.compactInSteps()).toBe(compaction); // one at a time
    await compaction;
    // Both batches were carried over; r1 and r2 were copied too unless the walk reached them
    // only after they were overwritten or deleted.
    expect(store.compactionStats.carriedBatches).toBe(2);
    expect(store.compactionStats.copiedRecords).toBeGreaterThanOrEqual(19_998);
    store.write([{ keyspace, name: 'later', value: Buffer.from('x') }]);
    const names = ['r0', 'r1', 'r2', 'r3', 'new', 'later', 'r19999'];
    const seen = contents(store, names);
    expect(seen.get('r1')).toBe(Buffer.from('overwritten').toString('hex'));
    expect(seen.get('r2')).toBeNull();
    expect(store.recordCount).toBe(20_000 + 1);
    store.verifyLog();
    store.close();
    const reopened = LogStore.open(dir, batchKey, { useCheckpoint: false }); // the mark accepts it too
    expect(contents(reopened, names)).toEqual(seen);
    reopened.close();
  });

  it('stops, leaving the store unchanged, when the store is closed meanwhile', async () => {
    const { dir, store } = filledStore(20_000);
    const log = fs.readFileSync(path.join(dir, STORE_FILE));
    const compaction = store.compactInSteps();
    await nextTurn();
    store.close();
    await expect(compaction).rejects.toMatchObject({ code: 'ERR_CANCELLED' });
    expect(fs.readFileSync(path.join(dir, STORE_FILE)).equals(log)).toBe(true);
    expect(fs.readdirSync(dir).filter((name) => name.includes('compact'))).toEqual([]);
  });
});

describe('leftovers of killed writers', () => {
  it('the first write after opening removes temp files a kill left (a reused pid too), never one in flight', async () => {
    const { dir, store } = freshStore();
    store.write([{ keyspace, name: 'a', value: Buffer.from('1') }]);
    store.close();
    // What a SIGKILL leaves: a compaction's new log, a checkpoint temp of another pid, and one
    // of this very pid (a restarted agent in a container runs under the same pid).
    const leftovers = [`${STORE_FILE}.compact`, `${CHECKPOINT_FILE}.999999.abc.tmp`, `${CHECKPOINT_FILE}.${process.pid}.def.tmp`];
    for (const name of leftovers) fs.writeFileSync(path.join(dir, name), Buffer.alloc(4096, 1));
    const reopened = LogStore.open(dir, batchKey);
    expect(fs.readdirSync(dir).filter((name) => leftovers.includes(name))).toHaveLength(3); // opening writes nothing
    reopened.write([{ keyspace, name: 'b', value: Buffer.alloc(2 * 1024 * 1024) }]); // starts a checkpoint in steps
    expect(fs.readdirSync(dir).filter((name) => leftovers.includes(name))).toEqual([]);
    // A checkpoint written now keeps the one in flight (it is this process's own).
    let inFlight: string[] = [];
    for (let turn = 0; turn < 1000 && inFlight.length === 0; turn++) {
      await nextTurn();
      inFlight = fs.readdirSync(dir).filter((name) => name.endsWith('.tmp'));
    }
    expect(inFlight).toHaveLength(1);
    const other = LogStore.open(dir, batchKey);
    other.checkpoint();
    expect(fs.existsSync(path.join(dir, inFlight[0]!))).toBe(true);
    other.close();
    await reopened.settled();
    expect(fs.readdirSync(dir).filter((name) => name.endsWith('.tmp') || name.endsWith('.compact'))).toEqual([]);
    expect(reopened.get(keyspace, 'b')?.length).toBe(2 * 1024 * 1024);
    reopened.close();
  });
});
