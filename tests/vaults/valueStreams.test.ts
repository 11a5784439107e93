import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LARGE_BLOB_THRESHOLD_BYTES } from '../../src/constants.js';
import { randomBytes } from '../../src/crypto/random.js';
import { STREAM_CHUNK_BYTES } from '../../src/crypto/stream.js';
import { isKeynodeError, type ErrorCode } from '../../src/errors.js';
import type { Keyspace } from '../../src/storage/Keyspace.js';
import type { LogStore } from '../../src/storage/LogStore.js';
import { encodeBlob } from '../../src/vaults/gitObjects.js';
import { encodeLargeBlobManifest, largeBlobChunkNames, parseLargeBlobManifest, readLargeBlob } from '../../src/vaults/largeBlobs.js';
import { objectRecordName } from '../../src/vaults/objectRecords.js';
import type { Vault } from '../../src/vaults/Vault.js';
import { readLargeValueWhole, stageValue } from '../../src/vaults/valueStreams.js';
import { createTestNode, tempDir } from '../helpers/index.js';

const MIB = 1024 * 1024;
/** Just over the threshold: kept as a large blob of a few 1 MiB chunks. */
const LARGE = LARGE_BLOB_THRESHOLD_BYTES + MIB + 12_345;

/** The vault's store and keyspace (tests look at records; the library does not expose them). */
const internals = (vault: Vault) => vault as unknown as { store: LogStore; keyspace: Keyspace };

async function freshVault() {
  const { node, nodePath } = await createTestNode();
  const vault = await node.vaults.createVault('v');
  return { node, nodePath, vault, store: internals(vault).store, keyspace: internals(vault).keyspace };
}

async function codeOf(promise: Promise<unknown>): Promise<ErrorCode | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    if (!isKeynodeError(error)) throw error;
    return error.code;
  }
}

async function collect(stream: AsyncIterable<Buffer>): Promise<{ value: Buffer; pieces: number[] }> {
  const pieces: Buffer[] = [];
  for await (const piece of stream) pieces.push(piece);
  return { value: Buffer.concat(pieces), pieces: pieces.map((p) => p.length) };
}

/** A value's pieces from a generator that reuses one buffer (the vault must copy or consume at once). */
function* reusedPieces(value: Buffer, pieceBytes = 256 * 1024): Generator<Uint8Array> {
  const piece = Buffer.alloc(pieceBytes);
  for (let at = 0; at < value.length; at += pieceBytes) {
    const n = value.copy(piece, 0, at, at + pieceBytes);
    yield piece.subarray(0, n);
  }
}

function manifestOf(store: LogStore, keyspace: Keyspace, oid: string) {
  return parseLargeBlobManifest(store.get(keyspace, objectRecordName(oid))!)!;
}

describe('Vault streaming values', () => {
  it('writes a large value from a stream of reused pieces and reads it back chunk by chunk, with its git id', async () => {
    const { node, vault, store, keyspace } = await freshVault();
    const value = randomBytes(LARGE);
    await vault.writeSecretStream('files/big.bin', reusedPieces(value));
    const oid = encodeBlob(value).oid;
    expect(await vault.reachableObjects()).toContain(oid);
    const manifest = manifestOf(store, keyspace, oid);
    expect(manifest.size).toBe(LARGE);
    const back = await collect(vault.readSecretStream('files/big.bin'));
    expect(back.value.equals(value)).toBe(true);
    expect(back.pieces).toEqual([...Array(5).fill(STREAM_CHUNK_BYTES), LARGE - 5 * STREAM_CHUNK_BYTES]);
    expect((await vault.stat('files/big.bin')).size).toBe(LARGE);
    expect((await vault.readSecret('files/big.bin')).equals(value)).toBe(true);
    node.close();
  });

  it('takes a Readable with a declared size, and refuses a source of another length storing nothing', async () => {
    const { node, vault, store } = await freshVault();
    const value = randomBytes(LARGE);
    await vault.writeSecretStream('a', Readable.from(reusedPieces(value, 100_000)), { size: LARGE, message: 'upload' });
    expect((await collect(vault.readSecretStream('a'))).value.equals(value)).toBe(true);
    expect((await vault.log({ limit: 1 }))[0]!.message).toBe('upload');
    const records = store.recordCount;
    expect(await codeOf(vault.writeSecretStream('b', Readable.from(reusedPieces(value)), { size: LARGE + 1 }))).toBe('ERR_INVALID_ARGUMENT');
    expect(await codeOf(vault.writeSecretStream('b', Readable.from(reusedPieces(value)), { size: LARGE - 1 }))).toBe('ERR_INVALID_ARGUMENT');
    expect(await codeOf(vault.writeSecretStream('b', [Buffer.from('short')], { size: 6 }))).toBe('ERR_INVALID_ARGUMENT');
    expect(store.recordCount).toBe(records);
    expect(await vault.exists('b')).toBe(false);
    node.close();
  });

  it('keeps small values in one record and hands them out in one piece', async () => {
    const { node, vault, store } = await freshVault();
    const before = store.recordCount;
    await vault.writeSecretStream('small', [Buffer.from('hello '), Buffer.from('world')]);
    // blob, root tree, commit, head (overwritten), index records: no chunk records
    expect(store.recordCount - before).toBeLessThan(8);
    expect((await collect(vault.readSecretStream('small'))).pieces).toEqual([11]);
    expect((await vault.readSecret('small')).toString()).toBe('hello world');
    // Exactly at the threshold: still one record.
    const atThreshold = randomBytes(LARGE_BLOB_THRESHOLD_BYTES);
    const beforeThreshold = store.recordCount;
    await vault.writeSecretStream('edge', reusedPieces(atThreshold));
    expect(store.recordCount - beforeThreshold).toBeLessThan(8);
    expect((await collect(vault.readSecretStream('edge'))).pieces).toEqual([LARGE_BLOB_THRESHOLD_BYTES]);
    node.close();
  });

  it('writeSecret of a large buffer keeps it in chunks too; versions of one path small then large both read', async () => {
    const { node, vault, store, keyspace } = await freshVault();
    await vault.writeSecret('cert', Buffer.from('v1 small'));
    const large = randomBytes(LARGE);
    await vault.writeSecret('cert', large);
    const manifest = manifestOf(store, keyspace, encodeBlob(large).oid);
    expect(manifest.chunkCount).toBe(6);
    expect((await vault.readSecret('cert', { version: 'HEAD~1' })).toString()).toBe('v1 small');
    expect((await collect(vault.readSecretStream('cert', { version: 'HEAD~1' }))).value.toString()).toBe('v1 small');
    expect((await collect(vault.readSecretStream('cert'))).value.equals(large)).toBe(true);
    // And back to small: the large version stays readable in history.
    await vault.writeSecret('cert', Buffer.from('v3'));
    expect((await collect(vault.readSecretStream('cert', { version: 'HEAD~1' }))).value.equals(large)).toBe(true);
    expect((await vault.stat('cert')).size).toBe(2);
    node.close();
  });

  it('the same large content written twice keeps one copy of its chunks', async () => {
    const { node, vault, store } = await freshVault();
    const value = randomBytes(LARGE);
    await vault.writeSecretStream('one', reusedPieces(value));
    const after = store.recordCount;
    await vault.writeSecretStream('two', reusedPieces(value));
    // a new tree, commit and index records; no chunk (6 of them) nor manifest
    expect(store.recordCount - after).toBeLessThan(6);
    expect((await collect(vault.readSecretStream('two'))).value.equals(value)).toBe(true);
    node.close();
  });

  it('refuses a large value over a directory, leaving no chunks behind', async () => {
    const { node, vault, store } = await freshVault();
    await vault.writeSecret('dir/x', Buffer.from('x'));
    const records = store.recordCount;
    expect(await codeOf(vault.writeSecretStream('dir', reusedPieces(randomBytes(LARGE))))).toBe('ERR_IS_A_DIRECTORY');
    expect(store.recordCount).toBe(records);
    node.close();
  });

  it('diff with values reports a large value by its size, never reading it whole', async () => {
    const { node, vault } = await freshVault();
    await vault.writeSecret('s', Buffer.from('small'));
    const large = randomBytes(LARGE);
    await vault.writeSecret('s', large);
    const [entry] = await vault.diff('HEAD~1', 'HEAD', { values: true });
    expect(entry).toMatchObject({ path: 's', status: 'modified', afterSize: LARGE });
    expect(entry!.before!.toString()).toBe('small');
    expect(entry!.after).toBeUndefined();
    node.close();
  });

  it('deleting a vault deletes every chunk of every large value in its history', async () => {
    const { node, store } = await freshVault();
    const recordsBefore = store.recordCount;
    const vault = await node.vaults.createVault('doomed');
    await vault.writeSecret('a', randomBytes(LARGE));
    await vault.writeSecret('a', randomBytes(LARGE + 1)); // the first value stays in history
    await vault.writeSecretStream('b', reusedPieces(randomBytes(2 * LARGE)));
    expect(store.recordCount - recordsBefore).toBeGreaterThan(6 + 6 + 12);
    await node.vaults.deleteVault('doomed');
    expect(store.recordCount).toBe(recordsBefore);
    const report = await node.check();
    expect(report).toMatchObject({ ok: true, orphans: 0, problems: [] });
    node.close();
  });

  it('keynode check reads a large value through: its chunks are no orphans, a damaged or missing chunk is damage', async () => {
    const { node, vault, store, keyspace } = await freshVault();
    const value = randomBytes(LARGE);
    await vault.writeSecret('big', value);
    const clean = await node.check();
    expect(clean).toMatchObject({ ok: true, orphans: 0, problems: [] });
    expect(clean.objects.blobs).toBe(1);
    const chunks = [...largeBlobChunkNames(manifestOf(store, keyspace, encodeBlob(value).oid))];
    // A chunk replaced by another sealed chunk (valid elsewhere, wrong here): fails its tag.
    const other = store.getSealed(keyspace, chunks[0]!)!;
    store.write([{ keyspace, name: chunks[2]!, sealed: other }]);
    const damaged = await node.check();
    expect(damaged.ok).toBe(false);
    expect(damaged.orphans).toBe(0);
    expect(damaged.problems.map((p) => [p.kind, p.damage, p.path])).toEqual([['damaged-record', true, 'big']]);
    expect(damaged.problems[0]!.message).toMatch(/chunk 2 of 6/);
    store.write([{ keyspace, name: chunks[5]!, delete: true }]);
    expect((await node.check()).problems).toHaveLength(1);
    await expect(collect(vault.readSecretStream('big'))).rejects.toMatchObject({ code: 'ERR_INTEGRITY' });
    node.close();
  });

  it('chunks staged by a write that never committed (a crash) are orphans, not damage', async () => {
    const { node, vault, store, keyspace } = await freshVault();
    await vault.writeSecret('kept', randomBytes(LARGE));
    // What a crash between the chunk batches and the commit leaves: chunks, no manifest.
    const staged = await stageValue({ store, keyspace, source: reusedPieces(randomBytes(LARGE)) });
    expect(staged.kind).toBe('large');
    const report = await node.check();
    expect(report.ok).toBe(true);
    expect(report.orphans).toBe(6);
    expect(report.problems.every((p) => p.kind === 'orphan-record' && !p.damage)).toBe(true);
    expect(report.problems[0]!.message).toMatch(/reachable from nothing \(space only: e.g. a chunk of a large value whose write stopped before its commit\)/);
    node.close();
  });

  it('exports a bundle holding a large value that git clones byte for byte', async () => {
    const { node, vault } = await freshVault();
    const value = randomBytes(LARGE);
    await vault.writeSecret('files/big.bin', value);
    await vault.writeSecret('small', Buffer.from('s'));
    const root = tempDir();
    const bundle = path.join(root, 'v.bundle');
    await vault.exportBundle(bundle);
    node.close();
    const clone = path.join(root, 'clone');
    const cloned = spawnSync('git', ['clone', '-q', bundle, clone], { encoding: 'utf8' });
    expect(cloned.status, cloned.stderr).toBe(0);
    expect(fs.readFileSync(path.join(clone, 'files/big.bin')).equals(value)).toBe(true);
  });

  it('stageValue: small iff the value ends by the threshold, whatever the pieces; a large one reads back with its git id (property)', async () => {
    const { node, store, keyspace } = await freshVault();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 }), fc.boolean(), async (pieces, declare) => {
        const value = Buffer.concat(pieces);
        const staged = await stageValue({ store, keyspace, source: pieces, size: declare ? value.length : undefined, threshold: 64, chunkBytes: 16 });
        expect(staged.kind).toBe(value.length <= 64 ? 'small' : 'large');
        if (staged.kind === 'small') return void expect(staged.value.equals(value)).toBe(true);
        expect(staged.oid).toBe(encodeBlob(value).oid);
        if (staged.commitOps.length > 0) store.write(staged.commitOps);
        const back: Buffer[] = [];
        for await (const chunk of readLargeBlob({ store, keyspace, oid: staged.oid })) back.push(chunk);
        expect(Buffer.concat(back).equals(value)).toBe(true);
      }),
      { numRuns: 80 },
    );
    node.close();
  });

  it('a value too large to read whole is refused from its manifest alone, before any chunk is read', async () => {
    const { node, store, keyspace } = await freshVault();
    const oid = 'ab'.repeat(20);
    // A manifest claiming 1 GiB whose chunks do not exist: reading any would fail ERR_INTEGRITY.
    const manifest = encodeLargeBlobManifest({ oid, size: 1024 * MIB, chunkBytes: MIB, salt: randomBytes(32) });
    const refused = readLargeValueWhole({ store, keyspace, oid, manifest, what: 'v:huge' });
    await expect(refused).rejects.toMatchObject({
      code: 'ERR_NOT_SUPPORTED',
      message: 'v:huge is 1024 MiB: values over 64 MiB are read as a stream (readSecretStream, or secrets get to a file)',
    });
    await expect(collect(readLargeBlob({ store, keyspace, oid, manifest }))).rejects.toMatchObject({
      code: 'ERR_INTEGRITY',
      message: expect.stringMatching(/chunk 0 of 1024 is missing/),
    });
    node.close();
  });
});
