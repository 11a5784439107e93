import { BUNDLE_LARGE_VALUES_TOTAL_MAX_BYTES, BUNDLE_LARGE_VALUE_MAX_BYTES, LARGE_BLOB_THRESHOLD_BYTES, SECRET_VALUE_MAX_BYTES } from '../constants.js';
import { KeynodeError } from '../errors.js';
import type { BatchOp, LogStore } from '../storage/LogStore.js';
import type { Keyspace } from '../storage/Keyspace.js';
import {
  largeBlobChunkNames,
  largeBlobManifestsAmong,
  largeBlobSize,
  parseLargeBlobManifest,
  readLargeBlob,
  stageLargeBlob,
  type LargeBlobManifest,
} from './largeBlobs.js';

/**
 * Secret values as streams, at the vault level: what Vault's streaming methods, `stat`, `diff`,
 * deletion and bundle export do with a value too large to hold (src/vaults/largeBlobs.ts keeps
 * it; docs/chunked-values.md). Values up to LARGE_BLOB_THRESHOLD_BYTES keep the one-record path.
 */

/** Bytes of a value source: a file or socket stream (a Readable is one), a generator, an array. */
export type ValueSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** A value read from a source: small (whole, one record) or staged as a large blob. */
export type StagedValue =
  { kind: 'small'; value: Buffer } | { kind: 'large'; oid: string; size: number; commitOps: BatchOp[]; chunkNames: () => Iterable<string> };

/**
 * Read `source` up to the threshold: a value that ends there is returned whole; a longer one is
 * staged as a large blob (chunks written durably in batches, the caller's commit adds
 * `commitOps`). Call it outside the store's write queue: staging a gigabyte must not hold every
 * other writer. Memory: the threshold plus one chunk batch, whatever the size.
 */
export async function stageValue(options: {
  store: LogStore;
  keyspace: Keyspace;
  source: ValueSource;
  size?: number;
  threshold?: number;
  chunkBytes?: number;
}): Promise<StagedValue> {
  const { store, keyspace, source, size } = options;
  const threshold = options.threshold ?? LARGE_BLOB_THRESHOLD_BYTES;
  if (size !== undefined && (!Number.isSafeInteger(size) || size < 0))
    throw new KeynodeError('ERR_INVALID_ARGUMENT', 'a value size must be a non-negative integer');
  const iterator = (Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]()) as
    AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  const head: Buffer[] = [];
  let headBytes = 0;
  let ended = false;
  // Pieces are copied: a source may reuse its buffer (a generator filling one block).
  if (size === undefined || size <= threshold) {
    while (headBytes <= threshold) {
      const next = await iterator.next();
      if (next.done) {
        ended = true;
        break;
      }
      if (!(next.value instanceof Uint8Array)) throw new KeynodeError('ERR_INVALID_ARGUMENT', 'a value source must yield bytes, not text');
      head.push(Buffer.from(next.value));
      headBytes += next.value.length;
    }
  }
  if (ended) {
    if (size !== undefined && headBytes !== size) {
      throw new KeynodeError(
        'ERR_INVALID_ARGUMENT',
        `the value is ${headBytes < size ? 'shorter' : 'longer'} than its declared ${size} bytes; nothing was stored`,
        { size },
      );
    }
    return { kind: 'small', value: Buffer.concat(head, headBytes) };
  }
  async function* rest(): AsyncGenerator<Uint8Array> {
    let done = false;
    try {
      yield* head.splice(0);
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
      done = true;
    } finally {
      // Staging stopped early (an error): let the source close (a file stream its descriptor).
      if (!done) await iterator.return?.();
    }
  }
  const staged = await stageLargeBlob({ store, keyspace, source: rest(), size, chunkBytes: options.chunkBytes });
  const manifest = staged.commitOps.length === 0 ? null : parseManifestOp(staged.commitOps);
  return {
    kind: 'large',
    oid: staged.oid,
    size: staged.size,
    commitOps: staged.commitOps,
    chunkNames: () => (manifest ? largeBlobChunkNames(manifest) : []),
  };
}

function parseManifestOp(ops: BatchOp[]): LargeBlobManifest | null {
  const op = ops[0];
  return op && 'value' in op && op.value ? parseLargeBlobManifest(op.value) : null;
}

/**
 * A large value read whole, for callers that need one buffer (readSecret, the agent's one-frame
 * reply): up to `maxBytes` (SECRET_VALUE_MAX_BYTES), refused past it before anything is read.
 */
export async function readLargeValueWhole(options: {
  store: LogStore;
  keyspace: Keyspace;
  oid: string;
  manifest: Buffer;
  maxBytes?: number;
  what: string;
}): Promise<Buffer> {
  const { store, keyspace, oid, manifest, what } = options;
  const maxBytes = options.maxBytes ?? SECRET_VALUE_MAX_BYTES;
  const size = largeBlobSize(manifest);
  if (size === null) throw new KeynodeError('ERR_INTEGRITY', `large value ${oid.slice(0, 12)} is damaged (its manifest is malformed)`, { oid });
  if (size > maxBytes) throw valueTooLarge(what, size, maxBytes);
  const whole = Buffer.allocUnsafe(size);
  let at = 0;
  for await (const chunk of readLargeBlob({ store, keyspace, oid, manifest })) at += chunk.copy(whole, at);
  return whole;
}

const mib = (bytes: number) => `${Math.ceil(bytes / 1024 / 1024)} MiB`;

/** The error for a value too large to hand out in one buffer (no value bytes in it). */
export function valueTooLarge(what: string, size: number, maxBytes: number): KeynodeError {
  return new KeynodeError(
    'ERR_NOT_SUPPORTED',
    `${what} is ${mib(size)}: values over ${mib(maxBytes)} are read as a stream (readSecretStream, or secrets get to a file)`,
    { size, limit: maxBytes },
  );
}

/** Chunk records of every large blob among `oids` (vault deletion: without them a deleted vault's chunks stay on disk). */
export function* largeBlobChunkRecords(store: LogStore, keyspace: Keyspace, oids: Iterable<string>): Generator<string> {
  for (const manifest of largeBlobManifestsAmong(store, keyspace, oids)) yield* largeBlobChunkNames(manifest);
}

/**
 * Refuse a bundle export that would materialise a large value past BUNDLE_LARGE_VALUE_MAX_BYTES,
 * or large values past BUNDLE_LARGE_VALUES_TOTAL_MAX_BYTES in all: git's pack is built in memory.
 * Checked before packing starts (reads only the records of a manifest's length).
 */
export function assertBundleExportable(store: LogStore, keyspace: Keyspace, oids: Iterable<string>, vault: string): void {
  let total = 0;
  for (const manifest of largeBlobManifestsAmong(store, keyspace, oids)) {
    total += manifest.size;
    if (manifest.size > BUNDLE_LARGE_VALUE_MAX_BYTES) {
      throw new KeynodeError(
        'ERR_NOT_SUPPORTED',
        `vault "${vault}" holds a value of ${mib(manifest.size)}: a bundle export holds values up to ${mib(BUNDLE_LARGE_VALUE_MAX_BYTES)} each`,
        {
          vault,
          size: manifest.size,
          limit: BUNDLE_LARGE_VALUE_MAX_BYTES,
        },
      );
    }
    if (total > BUNDLE_LARGE_VALUES_TOTAL_MAX_BYTES) {
      throw new KeynodeError(
        'ERR_NOT_SUPPORTED',
        `vault "${vault}" holds over ${mib(BUNDLE_LARGE_VALUES_TOTAL_MAX_BYTES)} of large values: too much for a bundle export`,
        {
          vault,
          limit: BUNDLE_LARGE_VALUES_TOTAL_MAX_BYTES,
        },
      );
    }
  }
}
