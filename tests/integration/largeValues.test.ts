import { createHash } from 'node:crypto';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { randomBytes } from '../../src/crypto/random.js';
import { STREAM_CHUNK_BYTES } from '../../src/crypto/stream.js';
import { Keyspace } from '../../src/storage/Keyspace.js';
import { LogStore } from '../../src/storage/LogStore.js';
import { encodeBlob } from '../../src/vaults/gitObjects.js';
import { largeBlobChunkNames, parseLargeBlobManifest, readLargeBlob, stageLargeBlob } from '../../src/vaults/largeBlobs.js';
import { objectRecordName } from '../../src/vaults/objectRecords.js';
import type { Vault } from '../../src/vaults/Vault.js';
import { createTestNode, runUntilKilled, tempDir } from '../helpers/index.js';

const MIB = 1024 * 1024;

/** A collector reachable from a test (the flag can be set at run time; `gc` then appears in new contexts). */
function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** Live bytes the process holds in JS objects and buffers. */
const liveBytes = () => {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
};

const PATTERN = randomBytes(MIB);

/** `size` bytes in 1 MiB pieces, each distinct, the same on every call (one buffer reused: consumers copy or hash it at once). */
function* bigValue(size: number): Generator<Uint8Array> {
  const piece = Buffer.from(PATTERN);
  for (let at = 0, n = 0; at < size; at += MIB, n++) {
    piece.writeUInt32BE(n, 0);
    yield piece.subarray(0, Math.min(MIB, size - at));
  }
}

describe('large values end to end on a real store', () => {
  it('stages and reads back a 300 MiB streamed value in bounded memory', async () => {
    const gc = exposeGc();
    const dir = tempDir();
    const batchKey = randomBytes(32);
    LogStore.create(dir, batchKey);
    const store = LogStore.open(dir, batchKey);
    const keyspace = new Keyspace(randomBytes(32));
    const size = 300 * MIB;
    gc();
    const idle = liveBytes();
    let peak = 0;
    /**
     * Sample live memory every 16 MiB: what is held, not what awaits the collector. Buffers
     * are freed by a sweeper after the collection, so it gets a few moments; the least of a
     * few tries counts.
     */
    const sample = async (n: number) => {
      if (n % 16 !== 0) return;
      let least = Infinity;
      for (let attempt = 0; attempt < 4 && least > 8 * MIB; attempt++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 5));
        least = Math.min(least, liveBytes() - idle);
      }
      peak = Math.max(peak, least);
    };
    async function* measured(): AsyncGenerator<Uint8Array> {
      let n = 0;
      for (const piece of bigValue(size)) {
        await sample(n++);
        yield piece;
      }
    }
    const staged = await stageLargeBlob({ store, keyspace, source: measured(), size });
    store.write(staged.commitOps);
    expect(staged.size).toBe(size);
    expect(staged.batchesWritten).toBeGreaterThanOrEqual(size / (8 * MIB));
    const expected = createHash('sha1').update(`blob ${size}\0`);
    for (const piece of bigValue(size)) expected.update(piece); // the same pieces again
    expect(staged.oid).toBe(expected.digest('hex'));
    const stagePeak = peak;

    peak = 0;
    const readHash = createHash('sha1').update(`blob ${size}\0`);
    let chunks = 0;
    let bytes = 0;
    for await (const chunk of readLargeBlob({ store, keyspace, oid: staged.oid })) {
      await sample(chunks++);
      readHash.update(chunk);
      bytes += chunk.length;
    }
    expect(bytes).toBe(size);
    expect(chunks).toBe(size / STREAM_CHUNK_BYTES);
    expect(readHash.digest('hex')).toBe(staged.oid);
    // One batch of chunks (8 MiB) and a chunk or two, never the value (300 MiB).
    expect(stagePeak).toBeLessThan(24 * MIB);
    expect(peak).toBeLessThan(24 * MIB);
    console.log(`live memory above idle: staging ${(stagePeak / MIB).toFixed(1)} MiB, reading ${(peak / MIB).toFixed(1)} MiB`);
    store.close();
  }, 120_000);

  it('a 300 MiB value through the vault: streamed in and out in bounded memory, its git id, stat, history, refusals, deletion', async () => {
    const gc = exposeGc();
    const { node } = await createTestNode();
    const internals = (v: Vault) => v as unknown as { store: LogStore };
    const store = internals(await node.vaults.createVault('other')).store;
    const recordsBefore = store.recordCount;
    const vault = await node.vaults.createVault('big');
    const size = 300 * MIB;
    await vault.writeSecret('file', Buffer.from('an older, small version'));
    gc();
    const idle = liveBytes();
    let peak = 0;
    const sample = async () => {
      let least = Infinity;
      for (let attempt = 0; attempt < 4 && least > 8 * MIB; attempt++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 5));
        least = Math.min(least, liveBytes() - idle);
      }
      peak = Math.max(peak, least);
    };
    async function* measured(): AsyncGenerator<Uint8Array> {
      let n = 0;
      for (const piece of bigValue(size)) {
        if (n++ % 16 === 0) await sample();
        yield piece;
      }
    }
    await vault.writeSecretStream('file', measured()); // size unknown: like stdin from a pipe
    const writePeak = peak;
    const expected = createHash('sha1').update(`blob ${size}\0`);
    for (const piece of bigValue(size)) expected.update(piece);
    const oid = expected.digest('hex');
    expect(await vault.reachableObjects()).toContain(oid);
    expect((await vault.stat('file')).size).toBe(size);

    peak = 0;
    const readHash = createHash('sha1').update(`blob ${size}\0`);
    let chunks = 0;
    let bytes = 0;
    for await (const chunk of vault.readSecretStream('file')) {
      if (chunks++ % 16 === 0) await sample();
      readHash.update(chunk);
      bytes += chunk.length;
    }
    expect(bytes).toBe(size);
    expect(readHash.digest('hex')).toBe(oid);
    // A batch of chunks (8 MiB) and a chunk or two, never the value (300 MiB).
    expect(writePeak).toBeLessThan(24 * MIB);
    expect(peak).toBeLessThan(24 * MIB);
    console.log(`vault-level live memory above idle: write ${(writePeak / MIB).toFixed(1)} MiB, read ${(peak / MIB).toFixed(1)} MiB`);

    // The older, small version is still there; whole reads and bundle export refuse clearly.
    expect((await vault.readSecret('file', { version: 'HEAD~1' })).toString()).toBe('an older, small version');
    await expect(vault.readSecret('file')).rejects.toMatchObject({ code: 'ERR_NOT_SUPPORTED', message: expect.stringMatching(/300 MiB.*stream/) });
    await expect(vault.exportBundle(path.join(tempDir(), 'v.bundle'))).rejects.toMatchObject({ code: 'ERR_NOT_SUPPORTED' });
    const [diff] = await vault.diff('HEAD~1', 'HEAD', { values: true });
    expect(diff).toMatchObject({ afterSize: size, before: Buffer.from('an older, small version') });

    // Deleting the vault deletes its 300 chunk records too.
    expect(store.recordCount - recordsBefore).toBeGreaterThan(300);
    await node.vaults.deleteVault('big');
    expect(store.recordCount).toBe(recordsBefore);
    expect(await node.check()).toMatchObject({ ok: true, orphans: 0 });
    node.close();
  }, 180_000);

  it('loses no acknowledged write when killed while staging', async () => {
    const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/crashLargeValue.mjs');
    const sizeOf = (i: number) => 1_000_000 + (i % 5) * 700_001; // as in the fixture
    const dir = tempDir();
    const batchKey = randomBytes(32);
    const secret = randomBytes(32);
    const keyspace = new Keyspace(secret);
    LogStore.create(dir, batchKey);
    const small: number[] = [];
    const large = new Map<number, string>();
    let next = 0;
    for (let trial = 0; trial < 8; trial++) {
      const acked: number[] = [];
      await runUntilKilled([FIXTURE, dir, batchKey.toString('hex'), secret.toString('hex'), String(next)], (line, child) => {
        if (line === 'READY') setTimeout(() => child.kill('SIGKILL'), 30 + Math.floor(Math.random() * 250));
        const [, kind, index, oid] = line.split(' ');
        if (kind === 'small') small.push(Number(index));
        if (kind === 'large') large.set(Number(index), oid!);
        if (kind) acked.push(Number(index));
      });
      next = Math.max(next, ...acked) + 1;
      // The store opens (a batch cut by the kill is left out), and every acknowledged write is there.
      const store = LogStore.open(dir, batchKey);
      for (const i of small) expect(store.get(keyspace, `small/${i}`)?.toString()).toBe(`value ${i}`);
      for (const [i, oid] of large) {
        expect(oid).toBe(encodeBlob(Buffer.alloc(sizeOf(i), i % 251)).oid);
        expect(store.get(keyspace, `large/${i}`)?.toString()).toBe(oid);
        let read = 0;
        for await (const chunk of readLargeBlob({ store, keyspace, oid })) {
          expect(chunk.every((byte) => byte === i % 251)).toBe(true);
          read += chunk.length;
        }
        expect(read).toBe(sizeOf(i));
      }
      store.close();
    }
    expect(large.size).toBeGreaterThan(0);
    // Chunks of values cut short are orphans: live records no manifest names (space, not damage).
    const store = LogStore.open(dir, batchKey);
    const named = new Set<string>();
    for (const i of small) named.add(keyspace.recordId(`small/${i}`).toString('hex'));
    for (const [i, oid] of large) {
      named.add(keyspace.recordId(`large/${i}`).toString('hex'));
      named.add(keyspace.recordId(objectRecordName(oid)).toString('hex'));
      const manifest = parseLargeBlobManifest(store.get(keyspace, objectRecordName(oid))!)!;
      for (const name of largeBlobChunkNames(manifest)) named.add(keyspace.recordId(name).toString('hex'));
    }
    const orphans = [...store.liveRecordIds()].filter((id) => !named.has(id.toString('hex'))).length;
    console.log(`after 8 kills: ${large.size} large values acknowledged, ${orphans} orphan chunk records`);
    // And the store takes writes again after the kills.
    const staged = await stageLargeBlob({ store, keyspace, source: [Buffer.from('after the crashes')], chunkBytes: 4 });
    store.write(staged.commitOps);
    const back: Buffer[] = [];
    for await (const chunk of readLargeBlob({ store, keyspace, oid: staged.oid })) back.push(chunk);
    expect(Buffer.concat(back).toString()).toBe('after the crashes');
    store.close();
  }, 120_000);
});
