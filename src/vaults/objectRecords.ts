import { KeynodeError } from '../errors.js';
import { materializeTree } from './treeStore.js';

/**
 * How a git object is kept in a vault's keyspace. The record `obj/<oid>` holds the wrapped
 * object ("type size\0content", not deflated), except that a tree may be held as a delta
 * against an earlier tree (src/vaults/treeStore.ts). Every reader of object records goes
 * through this module, so every reader sees canonical objects whatever the stored form.
 */
export const objectRecordName = (oid: string): string => `obj/${oid}`;

/** First bytes of a large blob's manifest record (src/vaults/largeBlobs.ts, docs/chunked-values.md). */
export const LARGE_BLOB_TAG = Buffer.from('\0keynode-large-blob-1\0', 'latin1');

/** Whether an object record holds a large blob's manifest rather than the object itself. */
export function isLargeBlobRecord(record: Uint8Array): boolean {
  return record.length >= LARGE_BLOB_TAG.length && Buffer.from(record.buffer, record.byteOffset, LARGE_BLOB_TAG.length).equals(LARGE_BLOB_TAG);
}

/**
 * Thrown by `readWrappedObject` when the object is a large blob: it is never built in memory.
 * The caller streams it (`readLargeBlob({ ..., manifest })`) or refuses; a caller that does
 * neither fails with this clear error instead of holding a gigabyte.
 */
export class LargeObjectError extends KeynodeError {
  constructor(
    readonly oid: string,
    /** The manifest record, as read: pass it to readLargeBlob to skip a second lookup. */
    readonly manifest: Buffer,
  ) {
    super('ERR_NOT_SUPPORTED', `object ${oid.slice(0, 12)} is a large value: read it as a stream`, { oid });
    this.name = 'LargeObjectError';
  }
}

/**
 * Wrapped object bytes for `oid`, whatever form its record takes; undefined when not stored.
 * A plain record is returned as stored (callers check its SHA-1); a delta tree is rebuilt from
 * its chain and its SHA-1 checked here (ERR_INTEGRITY when it does not match or a link is missing);
 * a large blob's manifest throws LargeObjectError (never a gigabyte in one buffer).
 */
export function readWrappedObject(readRecord: (name: string) => Uint8Array | undefined, oid: string): Buffer | undefined {
  const stored = readRecord(objectRecordName(oid));
  if (stored === undefined) return undefined;
  if (isLargeBlobRecord(stored)) throw new LargeObjectError(oid, Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength));
  return materializeTree({ oid, record: stored, readRecord: (id) => readRecord(objectRecordName(id)) });
}
