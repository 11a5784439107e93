import { createHash } from 'node:crypto';
import { KeynodeError } from '../errors.js';
import { TREE_DELTA_ENTRIES_PER_LINK, TREE_DELTA_MAX_CHAIN_SHARE, TREE_DELTA_MIN_CHAIN } from '../constants.js';
import { CompactTree, encodeTreeEntry, type DirectoryEdit, type TreeEntry, type TreeRecordInfo, type WrittenTree } from './trees.js';
import { parseTreeContent } from './gitObjects.js';

/**
 * How trees are stored (docs/storage-format.md, "Trees"). The record of a tree is either the
 * whole object ("tree SIZE\0content", as every object was before) or a delta against an earlier
 * tree of the same vault:
 *
 *   "\0keynode-tree-delta-1\0"  base oid (20 bytes)  depth (u32 BE)  chain bytes (u32 BE)
 *   removed count (u32 BE)  removed names ("NAME\0" each)  put entries (canonical tree entries)
 *
 * A plain record starts with "tree "/"blob "/"commit ", a delta with a NUL: never ambiguous.
 * The object id stays the SHA-1 of the whole canonical tree; a delta tree read without its base
 * in memory is rebuilt from its chain and its SHA-1 checked against its id before use.
 */
export const TREE_DELTA_TAG = Buffer.from('\0keynode-tree-delta-1\0', 'latin1');
const HEADER_BYTES = TREE_DELTA_TAG.length + 20 + 12;
/** A chain longer than this is damage (the writer's bound is far below it at any real size). */
const MAX_CHAIN_LINKS = 1_000_000;
const WHOLE: TreeRecordInfo = { depth: 0, chainBytes: 0 };

/** Reads the record of an object by id (undefined when absent). */
export type ReadObjectRecord = (oid: string) => Uint8Array | undefined;

interface TreeDelta {
  base: string;
  depth: number;
  chainBytes: number;
  removed: string[];
  upserts: Map<string, TreeEntry>;
}

function damaged(oid: string): KeynodeError {
  return new KeynodeError('ERR_INTEGRITY', `tree ${oid.slice(0, 12)} is damaged: its stored form does not rebuild to its id`, { oid });
}

export function isTreeDelta(record: Uint8Array): boolean {
  return record.length >= HEADER_BYTES && record[0] === 0 && Buffer.from(record.buffer, record.byteOffset, TREE_DELTA_TAG.length).equals(TREE_DELTA_TAG);
}

export function encodeTreeDelta(delta: {
  base: string;
  depth: number;
  chainBytes: number;
  removed: readonly string[];
  upserts: ReadonlyArray<readonly [string, TreeEntry]>;
}): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  TREE_DELTA_TAG.copy(header, 0);
  header.write(delta.base, TREE_DELTA_TAG.length, 'hex');
  header.writeUInt32BE(delta.depth, TREE_DELTA_TAG.length + 20);
  header.writeUInt32BE(delta.chainBytes, TREE_DELTA_TAG.length + 24);
  header.writeUInt32BE(delta.removed.length, TREE_DELTA_TAG.length + 28);
  return Buffer.concat([
    header,
    ...delta.removed.map((name) => Buffer.from(`${name}\0`, 'utf8')),
    ...delta.upserts.map(([name, entry]) => encodeTreeEntry(name, entry)),
  ]);
}

/** Decode a delta record; ERR_INTEGRITY if malformed (records are authenticated: only a bug or damage). */
function decodeTreeDelta(record: Buffer, oid: string): TreeDelta {
  if (!isTreeDelta(record)) throw damaged(oid);
  let at = TREE_DELTA_TAG.length;
  const base = record.toString('hex', at, at + 20);
  const depth = record.readUInt32BE(at + 20);
  const chainBytes = record.readUInt32BE(at + 24);
  const removedCount = record.readUInt32BE(at + 28);
  at = HEADER_BYTES;
  const removed: string[] = [];
  for (let i = 0; i < removedCount; i++) {
    const nul = record.indexOf(0, at);
    if (nul < 0) throw damaged(oid);
    removed.push(record.toString('utf8', at, nul));
    at = nul + 1;
  }
  const upserts = parseTreeContent(record.subarray(at));
  if (!upserts || base === oid) throw damaged(oid);
  return { base, depth, chainBytes, removed, upserts };
}

/** How a tree's record is stored (reads the record; for a whole tree that is the whole tree). */
function recordInfoOf(record: Uint8Array, oid: string): TreeRecordInfo {
  if (!isTreeDelta(record)) return WHOLE;
  const delta = decodeTreeDelta(Buffer.from(record.buffer, record.byteOffset, record.byteLength), oid);
  return { depth: delta.depth, chainBytes: delta.chainBytes };
}

/** Parse a whole tree record ("tree SIZE\0content"); null when it is not one. */
function parseWholeTree(record: Buffer): CompactTree | null {
  const nul = record.indexOf(0);
  if (nul < 0 || record.toString('latin1', 0, 5) !== 'tree ' || record.toString('latin1', 5, nul) !== String(record.length - nul - 1)) return null;
  return CompactTree.parse(record.subarray(nul + 1));
}

/**
 * Read the tree `oid` from its record: a whole tree is hashed and parsed; a delta is rebuilt
 * from its chain (down to a whole tree, or to a tree `cached` already holds) and the result's
 * SHA-1 compared with `oid`. Missing, malformed or damaged links are ERR_INTEGRITY, never a
 * wrong tree. `onRecord` sees every record id read (so a check can count chain bases as seen).
 */
export function loadStoredTree(options: { oid: string; readRecord: ReadObjectRecord; cached?: (oid: string) => CompactTree | undefined }): {
  tree: CompactTree;
  record: TreeRecordInfo;
} {
  const { oid, readRecord, cached } = options;
  const links: TreeDelta[] = [];
  const visited = new Set<string>([oid]);
  let base: CompactTree | undefined;
  for (let current = oid; base === undefined;) {
    if (current !== oid) base = cached?.(current);
    if (base) break;
    const stored = readRecord(current);
    if (stored === undefined) throw new KeynodeError('ERR_INTEGRITY', `tree ${current.slice(0, 12)} is missing`, { oid: current });
    const record = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
    if (isTreeDelta(record)) {
      const delta = decodeTreeDelta(record, current);
      if (visited.has(delta.base) || links.length >= MAX_CHAIN_LINKS) throw damaged(oid);
      visited.add(delta.base);
      links.push(delta);
      current = delta.base;
      continue;
    }
    if (current === oid && createHash('sha1').update(record).digest('hex') !== oid) throw damaged(oid);
    base = parseWholeTree(record) ?? undefined;
    if (!base) throw damaged(oid);
  }
  if (links.length === 0) return { tree: base, record: WHOLE };
  // Compose the chain oldest first into one set of changes, then apply it once.
  const changes = new Map<string, TreeEntry | null>();
  for (let i = links.length - 1; i >= 0; i--) {
    const link = links[i]!;
    for (const name of link.removed) changes.set(name, null);
    for (const [name, entry] of link.upserts) changes.set(name, entry);
  }
  let tree: CompactTree;
  try {
    tree = base.with(changes).tree;
  } catch {
    throw damaged(oid);
  }
  if (tree.oid() !== oid) throw damaged(oid);
  return { tree, record: { depth: links[0]!.depth, chainBytes: links[0]!.chainBytes } };
}

/** Longest delta chain for a tree of `entries` entries (see TREE_DELTA_ENTRIES_PER_LINK). */
export function maxChainDepth(entries: number): number {
  return Math.max(TREE_DELTA_MIN_CHAIN, Math.ceil(entries / TREE_DELTA_ENTRIES_PER_LINK));
}

/**
 * Build the tree an edit makes and stage its record: a delta against the edited directory's
 * previous version when that version is stored, the chain stays within `maxChainDepth` and the
 * chain's bytes within a share of the whole tree's size; else the whole tree (a new snapshot).
 */
export function writeStoredTree(options: {
  edit: DirectoryEdit;
  hasRecord: (oid: string) => boolean;
  readRecord: ReadObjectRecord;
  putRecord: (oid: string, record: Buffer) => void;
  /** How a cached tree's record is stored, when known (else its record is read). */
  knownRecord?: (oid: string) => TreeRecordInfo | undefined;
}): WrittenTree {
  const { edit, hasRecord, readRecord, putRecord, knownRecord } = options;
  const { tree, removed, upserts } = edit.base.with(edit.changes);
  const oid = tree.oid();
  if (hasRecord(oid)) {
    const known = knownRecord?.(oid);
    return known ? { oid, tree, record: known } : { oid, tree };
  }
  const wholeBytes = tree.contentBytes + `tree ${tree.contentBytes}\0`.length;
  if (edit.baseOid !== null && edit.baseOid !== oid && hasRecord(edit.baseOid)) {
    let baseInfo = knownRecord?.(edit.baseOid);
    if (!baseInfo) {
      const stored = readRecord(edit.baseOid);
      baseInfo = stored ? recordInfoOf(stored, edit.baseOid) : undefined;
    }
    if (baseInfo && baseInfo.depth + 1 <= maxChainDepth(tree.size)) {
      const delta = encodeTreeDelta({ base: edit.baseOid, depth: baseInfo.depth + 1, chainBytes: 0, removed, upserts });
      const chainBytes = baseInfo.chainBytes + delta.length;
      if (chainBytes <= wholeBytes * TREE_DELTA_MAX_CHAIN_SHARE) {
        delta.writeUInt32BE(chainBytes, TREE_DELTA_TAG.length + 24);
        putRecord(oid, delta);
        return { oid, tree, record: { depth: baseInfo.depth + 1, chainBytes } };
      }
    }
  }
  putRecord(oid, tree.wrapped());
  return { oid, tree, record: WHOLE };
}

/** The whole object ("tree SIZE\0content") for a tree record of either form. */
export function materializeTree(options: { oid: string; record: Uint8Array; readRecord: ReadObjectRecord }): Buffer {
  const { oid, record, readRecord } = options;
  if (!isTreeDelta(record)) return Buffer.from(record.buffer, record.byteOffset, record.byteLength);
  return loadStoredTree({ oid, readRecord: (id) => (id === oid ? record : readRecord(id)) }).tree.wrapped();
}
