import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from '../../src/crypto/random.js';
import { STREAM_TAG_BYTES } from '../../src/crypto/stream.js';
import { isKeynodeError } from '../../src/errors.js';
import { Keyspace } from '../../src/storage/Keyspace.js';
import { LogStore } from '../../src/storage/LogStore.js';
import { encodeBlob } from '../../src/vaults/gitObjects.js';
import {
  encodeLargeBlobManifest,
  isLargeBlobRecord,
  largeBlobChunkName,
  largeBlobChunkNames,
  largeBlobSize,
  parseLargeBlobManifest,
  readLargeBlob,
  stageLargeBlob,
  type LargeBlobManifest,
} from '../../src/vaults/largeBlobs.js';
import { objectRecordName } from '../../src/vaults/objectRecords.js';
import { TREE_DELTA_TAG } from '../../src/vaults/treeStore.js';
import { tempDir } from '../helpers/index.js';

const batchKey = randomBytes(32);

function freshStore(): { dir: string; store: LogStore; keyspace: Keyspace } {
  const dir = tempDir();
  LogStore.create(dir, batchKey);
  return { dir, store: LogStore.open(dir, batchKey), keyspace: new Keyspace(randomBytes(32)) };
}

/** The value cut into pieces of `piece` bytes (a stream's chunks, unrelated to the stream format's). */
function* pieces(data: Buffer, piece: number): Generator<Uint8Array> {
  for (let at = 0; at < data.length; at += piece) yield data.subarray(at, at + piece);
}

/** Stage and commit `data` (the manifest written as the commit's batch would); its manifest. */
async function storeValue(store: LogStore, keyspace: Keyspace, data: Buffer, options: { chunkBytes: number; declareSize?: boolean; piece?: number }) {
  const staged = await stageLargeBlob({
    store,
    keyspace,
    source: pieces(data, options.piece ?? 7),
    size: options.declareSize === false ? undefined : data.length,
    chunkBytes: options.chunkBytes,
    batchBytes: 3 * (options.chunkBytes + STREAM_TAG_BYTES),
  });
  store.write(staged.commitOps);
  return { staged, manifest: parseLargeBlobManifest(store.get(keyspace, objectRecordName(staged.oid))!)! };
}

/** Read a value back: the chunks yielded before it ended, and the error that ended it (if any). */
async function readAll(store: LogStore, keyspace: Keyspace, oid: string): Promise<{ chunks: Buffer[]; error?: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of readLargeBlob({ store, keyspace, oid })) chunks.push(chunk);
    return { chunks };
  } catch (error) {
    return { chunks, error };
  }
}

/** Rewrite one chunk record with other sealed bytes (what damage or a hostile writer could do). */
function putChunk(store: LogStore, keyspace: Keyspace, manifest: LargeBlobManifest, index: number, sealed: Buffer): void {
  store.write([{ keyspace, name: largeBlobChunkName(manifest.salt, index), sealed }]);
}

const chunkOf = (store: LogStore, keyspace: Keyspace, manifest: LargeBlobManifest, index: number) =>
  store.getSealed(keyspace, largeBlobChunkName(manifest.salt, index))!;

describe('large blobs', () => {
  it('round-trip any size across chunk boundaries, with the git id of the whole value', async () => {
    const { store, keyspace } = freshStore();
    const seen = new Set<string>(); // short random values (0 or 1 byte) do repeat
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 48 })
          .chain((chunk) =>
            fc.tuple(
              fc.constant(chunk),
              fc.oneof(fc.constantFrom(0, 1, chunk - 1, chunk, chunk + 1, 5 * chunk), fc.nat({ max: 10 * chunk })),
              fc.boolean(),
              fc.integer({ min: 1, max: 100 }),
            ),
          ),
        async ([chunkBytes, size, declareSize, piece]) => {
          const data = randomBytes(size);
          const records = store.recordCount;
          const { staged, manifest } = await storeValue(store, keyspace, data, { chunkBytes, declareSize, piece });
          expect(staged.oid).toBe(encodeBlob(data).oid);
          expect(staged.size).toBe(size);
          expect(manifest.chunkCount).toBe(Math.max(1, Math.ceil(size / chunkBytes)));
          // The chunks and the manifest, nothing else; nothing at all for a value stored before.
          expect(staged.commitOps.length).toBe(seen.has(staged.oid) ? 0 : 1);
          expect(store.recordCount - records).toBe(seen.has(staged.oid) ? 0 : manifest.chunkCount + 1);
          seen.add(staged.oid);
          const { chunks, error } = await readAll(store, keyspace, staged.oid);
          expect(error).toBeUndefined();
          expect(chunks.length).toBe(manifest.chunkCount);
          expect(Buffer.concat(chunks).equals(data)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('writes chunks in bounded batches before the commit, and the manifest only in the commit ops', async () => {
    const { store, keyspace } = freshStore();
    const data = randomBytes(10 * 64);
    const before = store.stats().recordCount;
    const staged = await stageLargeBlob({
      store,
      keyspace,
      source: pieces(data, 1000),
      size: data.length,
      chunkBytes: 64,
      batchBytes: 3 * (64 + STREAM_TAG_BYTES),
    });
    expect(staged.batchesWritten).toBe(4); // 3 + 3 + 3 + 1 chunks
    expect(store.stats().recordCount - before).toBe(10);
    expect(store.has(keyspace, objectRecordName(staged.oid))).toBe(false);
    expect(staged.commitOps).toHaveLength(1);
    expect(staged.commitOps[0]!.name).toBe(objectRecordName(staged.oid));
    const op = staged.commitOps[0]!;
    const record = 'value' in op ? Buffer.from(op.value) : Buffer.alloc(0);
    expect(isLargeBlobRecord(record)).toBe(true);
    expect(largeBlobSize(record)).toBe(640);
    expect([...largeBlobChunkNames(parseLargeBlobManifest(record)!)]).toHaveLength(10);
  });

  it('stays readable across reopen (from a checkpoint and from a full replay) and compaction', async () => {
    const { dir, store, keyspace } = freshStore();
    const data = randomBytes(5000);
    const { staged } = await storeValue(store, keyspace, data, { chunkBytes: 256 });
    store.checkpoint();
    store.close();
    for (const useCheckpoint of [true, false]) {
      const again = LogStore.open(dir, batchKey, { useCheckpoint });
      expect(Buffer.concat((await readAll(again, keyspace, staged.oid)).chunks).equals(data)).toBe(true);
      again.compact();
      expect(Buffer.concat((await readAll(again, keyspace, staged.oid)).chunks).equals(data)).toBe(true);
      again.close();
    }
  });

  it('keeps one copy of a value staged twice', async () => {
    const { store, keyspace } = freshStore();
    const data = randomBytes(1000);
    await storeValue(store, keyspace, data, { chunkBytes: 100 });
    const records = store.recordCount;
    const again = await stageLargeBlob({ store, keyspace, source: [data], chunkBytes: 100 });
    expect(again.commitOps).toEqual([]);
    expect(store.recordCount).toBe(records);
  });

  it('refuses a source longer or shorter than its declared size, or yielding text, leaving nothing staged', async () => {
    const { store, keyspace } = freshStore();
    const data = randomBytes(1000);
    for (const size of [999, 1001]) {
      const caught = await stageLargeBlob({ store, keyspace, source: pieces(data, 10), size, chunkBytes: 50, batchBytes: 100 }).catch(
        (error: unknown) => error,
      );
      expect(isKeynodeError(caught, 'ERR_INVALID_ARGUMENT')).toBe(true);
      expect(store.recordCount).toBe(0);
    }
    const text = await stageLargeBlob({ store, keyspace, source: ['text' as unknown as Uint8Array], chunkBytes: 50 }).catch((error: unknown) => error);
    expect(isKeynodeError(text, 'ERR_INVALID_ARGUMENT')).toBe(true);
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield randomBytes(500);
      throw new Error('source broke');
    }
    await expect(stageLargeBlob({ store, keyspace, source: failing(), chunkBytes: 50, batchBytes: 100 })).rejects.toThrow('source broke');
    expect(store.recordCount).toBe(0);
  });

  describe('damage is ERR_INTEGRITY before any byte of the bad chunk is handed out', () => {
    const CHUNK = 64;
    const COUNT = 6;

    /** A value of COUNT chunks, the last one full-sized when `full`. */
    async function setUp(full = false) {
      const { store, keyspace } = freshStore();
      const data = randomBytes(COUNT * CHUNK - (full ? 0 : 10));
      const { staged, manifest } = await storeValue(store, keyspace, data, { chunkBytes: CHUNK });
      expect(manifest.chunkCount).toBe(COUNT);
      const expectFailsAt = async (index: number) => {
        const { chunks, error } = await readAll(store, keyspace, staged.oid);
        expect(isKeynodeError(error, 'ERR_INTEGRITY')).toBe(true);
        expect(chunks.length).toBe(index);
        expect(Buffer.concat(chunks).equals(data.subarray(0, index * CHUNK))).toBe(true);
      };
      const expectWhole = async () => {
        const { chunks, error } = await readAll(store, keyspace, staged.oid);
        expect(error).toBeUndefined();
        expect(Buffer.concat(chunks).equals(data)).toBe(true);
      };
      const putManifest = (fields: Partial<LargeBlobManifest>) =>
        store.write([{ keyspace, name: objectRecordName(staged.oid), value: encodeLargeBlobManifest({ ...manifest, ...fields }) }]);
      return { store, keyspace, data, oid: staged.oid, manifest, expectFailsAt, expectWhole, putManifest };
    }

    it('a missing chunk', async () => {
      const { store, keyspace, manifest, expectFailsAt } = await setUp();
      store.write([{ keyspace, name: largeBlobChunkName(manifest.salt, 3), delete: true }]);
      await expectFailsAt(3);
    });

    it('reordered, duplicated and altered chunks', async () => {
      const { store, keyspace, manifest, expectFailsAt, expectWhole } = await setUp();
      const [two, three] = [chunkOf(store, keyspace, manifest, 2), chunkOf(store, keyspace, manifest, 3)];
      putChunk(store, keyspace, manifest, 2, three);
      putChunk(store, keyspace, manifest, 3, two);
      await expectFailsAt(2);
      putChunk(store, keyspace, manifest, 2, two);
      putChunk(store, keyspace, manifest, 3, two); // chunk 2 twice
      await expectFailsAt(3);
      const altered = Buffer.from(three);
      altered[5]! ^= 0x40;
      putChunk(store, keyspace, manifest, 3, altered);
      await expectFailsAt(3);
      putChunk(store, keyspace, manifest, 3, three);
      await expectWhole();
    });

    it('a chunk of another value at the same position', async () => {
      const { store, keyspace, manifest, expectFailsAt } = await setUp();
      const other = await storeValue(store, keyspace, randomBytes(COUNT * CHUNK - 10), { chunkBytes: CHUNK });
      putChunk(store, keyspace, manifest, 1, chunkOf(store, keyspace, other.manifest, 1));
      await expectFailsAt(1);
    });

    it('a value cut at a chunk boundary (the manifest shortened)', async () => {
      const { putManifest, expectFailsAt } = await setUp(true);
      putManifest({ size: (COUNT - 1) * CHUNK });
      await expectFailsAt(COUNT - 2); // chunk COUNT-2 was not sealed as the last
    });

    it('a last chunk read as not last although full-sized (the manifest extended)', async () => {
      const { putManifest, expectFailsAt } = await setUp(true);
      putManifest({ size: (COUNT + 1) * CHUNK });
      await expectFailsAt(COUNT - 1);
    });

    it('a manifest of another object, a malformed one, or none', async () => {
      const { store, keyspace, oid, putManifest, expectFailsAt } = await setUp();
      putManifest({ oid: encodeBlob(Buffer.from('other')).oid });
      await expectFailsAt(0);
      store.write([{ keyspace, name: objectRecordName(oid), value: Buffer.from('blob 3\0abc') }]);
      await expectFailsAt(0);
      store.write([{ keyspace, name: objectRecordName(oid), delete: true }]);
      await expectFailsAt(0);
    });

    it('content that does not hash to the id (a manifest under the wrong name): the last chunk is withheld', async () => {
      const { store, keyspace, manifest } = await setUp();
      const wrongOid = encodeBlob(Buffer.from('not this value')).oid;
      store.write([{ keyspace, name: objectRecordName(wrongOid), value: encodeLargeBlobManifest({ ...manifest, oid: wrongOid }) }]);
      const { chunks, error } = await readAll(store, keyspace, wrongOid);
      expect(isKeynodeError(error, 'ERR_INTEGRITY')).toBe(true);
      expect(chunks.length).toBe(COUNT - 1);
    });
  });

  it('tells a manifest from a plain object record and a tree delta', () => {
    const manifest = encodeLargeBlobManifest({ oid: encodeBlob(Buffer.from('x')).oid, size: 1, chunkBytes: 16, salt: randomBytes(32) });
    expect(isLargeBlobRecord(manifest)).toBe(true);
    expect(isLargeBlobRecord(encodeBlob(Buffer.from('x')).wrapped)).toBe(false);
    expect(isLargeBlobRecord(Buffer.concat([TREE_DELTA_TAG, randomBytes(40)]))).toBe(false);
    expect(isLargeBlobRecord(Buffer.alloc(3))).toBe(false);
    expect(parseLargeBlobManifest(manifest.subarray(0, manifest.length - 1))).toBeNull();
    const hugeChunks = Buffer.from(manifest);
    hugeChunks.writeUInt32BE(0xffffffff, 30);
    expect(parseLargeBlobManifest(hugeChunks)).toBeNull();
  });
});
