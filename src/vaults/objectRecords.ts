import { materializeTree } from './treeStore.js';

/**
 * How a git object is kept in a vault's keyspace. The record `obj/<oid>` holds the wrapped
 * object ("type size\0content", not deflated), except that a tree may be held as a delta
 * against an earlier tree (src/vaults/treeStore.ts). Every reader of object records goes
 * through this module, so every reader sees canonical objects whatever the stored form.
 */
export const objectRecordName = (oid: string): string => `obj/${oid}`;

/**
 * Wrapped object bytes for `oid`, whatever form its record takes; undefined when not stored.
 * A plain record is returned as stored (callers check its SHA-1); a delta tree is rebuilt from
 * its chain and its SHA-1 checked here (ERR_INTEGRITY when it does not match or a link is missing).
 */
export function readWrappedObject(readRecord: (name: string) => Uint8Array | undefined, oid: string): Buffer | undefined {
  const stored = readRecord(objectRecordName(oid));
  if (stored === undefined) return undefined;
  return materializeTree({ oid, record: stored, readRecord: (id) => readRecord(objectRecordName(id)) });
}
