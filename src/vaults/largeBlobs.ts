import { createHash } from 'node:crypto';
import { randomBytes } from '../crypto/random.js';
import { STREAM_CHUNK_BYTES, STREAM_SALT_BYTES, StreamReader, StreamWriter, streamKey } from '../crypto/stream.js';
import { LARGE_BLOB_BATCH_BYTES } from '../constants.js';
import { KeynodeError } from '../errors.js';
import type { BatchOp, LogStore } from '../storage/LogStore.js';
import type { Keyspace } from '../storage/Keyspace.js';
import { LARGE_BLOB_TAG, isLargeBlobRecord, objectRecordName } from './objectRecords.js';

// The tag lives with the other stored forms of objects (objectRecords.ts reads every object record).
export { LARGE_BLOB_TAG, isLargeBlobRecord };

/**
 * How a blob too large to hold in memory is kept in a vault's keyspace (docs/chunked-values.md).
 *
 * Its content is sealed as a stream (src/crypto/stream.ts) under a key of its own, derived from
 * the keyspace's stream secret and a random 32-byte salt; chunk i is the record
 * `blob-chunk/<salt hex>/<i>`, stored pre-sealed (the stream's AEAD is its only encryption).
 * The record `obj/<oid>`, where any object lives, holds a small manifest instead of the object:
 *
 *   "\0keynode-large-blob-1\0" | size u64 | chunkBytes u32 | salt (32) | oid (20)
 *
 * sealed like any record (bound to `obj/<oid>`). A plain object record starts with "blob "/
 * "tree "/"commit ", a tree delta with "\0keynode-tree-delta-1\0": never ambiguous. The oid stays
 * the git id of the whole value (SHA-1 of "blob SIZE\0" + content), checked at the end of every
 * read; the salt binds the chunks to this value, the stream's counter and last flag their order
 * and number.
 *
 * Chunks are written in bounded batches before the commit; the manifest goes in the commit's
 * batch. A crash in between leaves chunk records nothing names: orphans (`keynode check` counts
 * them, nothing acknowledged is lost).
 */
const MANIFEST_BYTES = LARGE_BLOB_TAG.length + 8 + 4 + STREAM_SALT_BYTES + 20;
/** Chunk sizes a manifest may name: larger would let one record decide how much a read holds. */
const MAX_CHUNK_BYTES = 64 * 1_024 * 1_024;

export interface LargeBlobManifest {
  oid: string;
  size: number;
  chunkBytes: number;
  salt: Buffer;
  /** Number of chunk records (1 for an empty value: its one, empty, last chunk). */
  chunkCount: number;
}

function chunkCountOf(size: number, chunkBytes: number): number {
  return size === 0 ? 1 : Math.ceil(size / chunkBytes);
}

export function encodeLargeBlobManifest(manifest: Omit<LargeBlobManifest, 'chunkCount'>): Buffer {
  const out = Buffer.alloc(MANIFEST_BYTES);
  let at = LARGE_BLOB_TAG.copy(out, 0);
  at = out.writeBigUInt64BE(BigInt(manifest.size), at);
  at = out.writeUInt32BE(manifest.chunkBytes, at);
  at += manifest.salt.copy(out, at);
  out.write(manifest.oid, at, 'hex');
  return out;
}

/** The manifest in a record, or null when the record is not a well-formed manifest. */
export function parseLargeBlobManifest(record: Uint8Array): LargeBlobManifest | null {
  if (record.length !== MANIFEST_BYTES || !isLargeBlobRecord(record)) return null;
  const bytes = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
  let at = LARGE_BLOB_TAG.length;
  const size = bytes.readBigUInt64BE(at);
  at += 8;
  const chunkBytes = bytes.readUInt32BE(at);
  at += 4;
  const salt = Buffer.from(bytes.subarray(at, at + STREAM_SALT_BYTES));
  at += STREAM_SALT_BYTES;
  const oid = bytes.toString('hex', at, at + 20);
  if (size > BigInt(Number.MAX_SAFE_INTEGER) || chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES) return null;
  return { oid, size: Number(size), chunkBytes, salt, chunkCount: chunkCountOf(Number(size), chunkBytes) };
}

/** Record name of chunk `index` of the value sealed under `salt`. */
export function largeBlobChunkName(salt: Uint8Array, index: number): string {
  return `blob-chunk/${Buffer.from(salt).toString('hex')}/${index}`;
}

/** Every chunk record a manifest names, in order (for `keynode check` and vault deletion). */
export function* largeBlobChunkNames(manifest: LargeBlobManifest): Generator<string> {
  for (let i = 0; i < manifest.chunkCount; i++) yield largeBlobChunkName(manifest.salt, i);
}

function damaged(oid: string, what: string): KeynodeError {
  return new KeynodeError('ERR_INTEGRITY', `large value ${oid.slice(0, 12)} is damaged (${what})`, { oid });
}

/** Open a value's chunks in order, each verified before it is returned (sizes included). */
function* openChunks(store: LogStore, keyspace: Keyspace, manifest: LargeBlobManifest): Generator<Buffer> {
  const reader = new StreamReader(streamKey(keyspace.streamSecret, manifest.salt), { chunkBytes: manifest.chunkBytes });
  const lastBytes = manifest.size - (manifest.chunkCount - 1) * manifest.chunkBytes;
  for (let i = 0; i < manifest.chunkCount; i++) {
    const sealed = store.getSealed(keyspace, largeBlobChunkName(manifest.salt, i));
    if (sealed === undefined) throw damaged(manifest.oid, `chunk ${i} of ${manifest.chunkCount} is missing`);
    const last = i === manifest.chunkCount - 1;
    const plaintext = reader.open(sealed, { last });
    if (plaintext === null) throw damaged(manifest.oid, `chunk ${i} of ${manifest.chunkCount} failed its integrity check`);
    if (last && plaintext.length !== lastBytes) throw damaged(manifest.oid, 'its size does not match its chunks');
    yield plaintext;
  }
}

export interface ReadLargeBlobOptions {
  store: LogStore;
  /** The vault's keyspace. */
  keyspace: Keyspace;
  oid: string;
  /** The manifest record, when the caller has read `obj/<oid>` already (it is read otherwise). */
  manifest?: Uint8Array;
}

/**
 * The content of a large blob, one chunk (1 MiB) at a time. Every chunk is verified before it is
 * yielded, and the SHA-1 of the whole before the last one: a missing, altered, reordered,
 * duplicated, cut or foreign chunk fails with ERR_INTEGRITY before any of its bytes are handed
 * out. Memory: a chunk or two, whatever the size.
 */
export async function* readLargeBlob(options: ReadLargeBlobOptions): AsyncGenerator<Buffer, void, undefined> {
  yield* largeBlobChunks(options);
}

/**
 * `readLargeBlob` for synchronous readers (`keynode check`, bundle export through git's fs):
 * the same checks, the same memory bound.
 */
export function* largeBlobChunks(options: ReadLargeBlobOptions): Generator<Buffer, void, undefined> {
  const { store, keyspace, oid, manifest } = options;
  const record = manifest ?? store.get(keyspace, objectRecordName(oid));
  if (record === undefined) throw new KeynodeError('ERR_INTEGRITY', `large value ${oid.slice(0, 12)} is missing`, { oid });
  const parsed = parseLargeBlobManifest(record);
  if (!parsed) throw damaged(oid, 'its manifest is malformed');
  if (parsed.oid !== oid) throw damaged(oid, 'its manifest names another object');
  const hash = createHash('sha1').update(`blob ${parsed.size}\0`, 'ascii');
  let index = 0;
  for (const plaintext of openChunks(store, keyspace, parsed)) {
    hash.update(plaintext);
    if (++index === parsed.chunkCount && hash.digest('hex') !== oid) throw damaged(oid, 'its content does not hash to its id');
    yield plaintext;
  }
}

/**
 * The manifests among the object records of `oids` (for vault deletion and bundle export).
 * A record's stored length rules most objects out without decrypting them: only records of a
 * manifest's exact length are read.
 */
export function* largeBlobManifestsAmong(store: LogStore, keyspace: Keyspace, oids: Iterable<string>): Generator<LargeBlobManifest> {
  for (const oid of oids) {
    const name = objectRecordName(oid);
    if (store.valueLength(keyspace, name) !== MANIFEST_BYTES) continue;
    const record = store.get(keyspace, name);
    const manifest = record === undefined || !isLargeBlobRecord(record) ? null : parseLargeBlobManifest(record);
    if (manifest) yield manifest;
  }
}

/** Size of a large blob from its manifest alone (no chunk is read); null if not a manifest. */
export function largeBlobSize(record: Uint8Array): number | null {
  return parseLargeBlobManifest(record)?.size ?? null;
}

export interface StageLargeBlobOptions {
  store: LogStore;
  /** The vault's keyspace. */
  keyspace: Keyspace;
  /** The content, in pieces of any size (a file or socket stream, a generator). */
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /**
   * The content's size when known ahead (a file's stat, a request header): the git id is then
   * hashed while the content streams by. Without it the staged chunks are read back once to
   * hash them ("blob SIZE\0" needs the size first). A source that yields a different number of
   * bytes fails with ERR_INVALID_ARGUMENT and leaves nothing staged.
   */
  size?: number;
  /** Plaintext bytes per chunk (STREAM_CHUNK_BYTES; tests use small ones). */
  chunkBytes?: number;
  /** Bytes of sealed chunks per batch written (LARGE_BLOB_BATCH_BYTES). */
  batchBytes?: number;
}

export interface StagedLargeBlob {
  oid: string;
  size: number;
  /** For the commit's batch: the manifest (nothing when the object was stored already). */
  commitOps: BatchOp[];
  /** Chunk batches written (tests count work with it). */
  batchesWritten: number;
}

/**
 * Seal a value from `source` into chunk records, written (durably) in batches of about
 * `batchBytes`, and return the ops that make it an object: put them in the commit's batch.
 * Memory: one chunk being filled plus one batch, whatever the size.
 *
 * Chunk batches are plain `store.write` calls, not `store.exclusive` ones: they put records
 * under fresh random names, so no read decides them, and a commit that holds the queue while
 * it stages (or waits for) this value cannot deadlock on it. On failure the chunks written so
 * far are deleted (best effort; a crash leaves them as orphans).
 */
export async function stageLargeBlob(options: StageLargeBlobOptions): Promise<StagedLargeBlob> {
  const { store, keyspace, source, size } = options;
  const chunkBytes = options.chunkBytes ?? STREAM_CHUNK_BYTES;
  const batchBytes = options.batchBytes ?? LARGE_BLOB_BATCH_BYTES;
  if (size !== undefined && (!Number.isSafeInteger(size) || size < 0))
    throw new KeynodeError('ERR_INVALID_ARGUMENT', 'a value size must be a non-negative integer');
  if (chunkBytes > MAX_CHUNK_BYTES) throw new RangeError(`large blob chunks may not exceed ${MAX_CHUNK_BYTES} bytes`);
  const salt = randomBytes(STREAM_SALT_BYTES);
  const writer = new StreamWriter(streamKey(keyspace.streamSecret, salt), { chunkBytes });
  const hash = size === undefined ? null : createHash('sha1').update(`blob ${size}\0`, 'ascii');
  let batch: BatchOp[] = [];
  let batchSealedBytes = 0;
  let written = 0;
  let batchesWritten = 0;
  let sealedCount = 0;
  const add = (sealed: Buffer) => {
    batch.push({ keyspace, name: largeBlobChunkName(salt, sealedCount++), sealed });
    batchSealedBytes += sealed.length;
  };
  const flush = () => {
    if (batch.length === 0) return;
    store.write(batch);
    written += batch.length;
    batchesWritten++;
    batch = [];
    batchSealedBytes = 0;
  };
  let total = 0;
  try {
    for await (const piece of source) {
      if (!(piece instanceof Uint8Array)) throw new KeynodeError('ERR_INVALID_ARGUMENT', 'a value source must yield bytes, not text');
      total += piece.length;
      if (size !== undefined && total > size)
        throw new KeynodeError('ERR_INVALID_ARGUMENT', `the value is longer than its declared ${size} bytes; nothing was stored`, { size });
      hash?.update(piece);
      for (const sealed of writer.push(piece)) {
        add(sealed);
        if (batchSealedBytes >= batchBytes) flush();
      }
    }
    if (size !== undefined && total !== size)
      throw new KeynodeError('ERR_INVALID_ARGUMENT', `the value is shorter than its declared ${size} bytes; nothing was stored`, { size });
    add(writer.finish());
    flush();
  } catch (error) {
    discardChunks(store, keyspace, salt, written);
    throw error;
  }
  const manifest: LargeBlobManifest = { oid: '', size: total, chunkBytes, salt, chunkCount: writer.chunkCount };
  if (hash) manifest.oid = hash.digest('hex');
  else {
    // Size unknown up front: hash the staged chunks (each verified on the way, too).
    const readBack = createHash('sha1').update(`blob ${total}\0`, 'ascii');
    try {
      for (const plaintext of openChunks(store, keyspace, { ...manifest, oid: 'staged value' })) readBack.update(plaintext);
    } catch (error) {
      discardChunks(store, keyspace, salt, written);
      throw error;
    }
    manifest.oid = readBack.digest('hex');
  }
  if (store.has(keyspace, objectRecordName(manifest.oid))) {
    // The same content is stored already: keep that object, drop this copy.
    discardChunks(store, keyspace, salt, written);
    return { oid: manifest.oid, size: total, commitOps: [], batchesWritten };
  }
  return {
    oid: manifest.oid,
    size: total,
    commitOps: [{ keyspace, name: objectRecordName(manifest.oid), value: encodeLargeBlobManifest(manifest) }],
    batchesWritten,
  };
}

/** Delete the first `count` chunks staged under `salt`, best effort (else they stay orphans). */
function discardChunks(store: LogStore, keyspace: Keyspace, salt: Buffer, count: number): void {
  if (count === 0) return;
  try {
    store.write(Array.from({ length: count }, (_, i) => ({ keyspace, name: largeBlobChunkName(salt, i), delete: true as const })));
  } catch {
    /* orphans cost space only; keynode check reports them */
  }
}
