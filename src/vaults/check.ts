import { createHash } from 'node:crypto';
import { CodecError, decodeRecord } from '../codec.js';
import { isKeynodeError } from '../errors.js';
import type { LogStore } from '../storage/LogStore.js';
import { Keyspace } from '../storage/Keyspace.js';
import { parseTreeContent } from './gitObjects.js';
import { largeBlobChunkNames, largeBlobChunks, parseLargeBlobManifest } from './largeBlobs.js';
import { LargeObjectError, readWrappedObject } from './objectRecords.js';
import { checkIndexRecords } from './historyIndex.js';
import { joinPath } from './paths.js';
import { HEAD_RECORD } from './Vault.js';
import { REGISTRY_RECORD, registryEntriesCheck, vaultRecordCheck } from './VaultManager.js';

/**
 * The vault half of `keynode check` (node/check.ts composes it): read the vault registry, then
 * walk each vault's objects from its head, reading every object once and checking that it
 * decrypts, hashes to its id, has the type its referrer says, and that everything it refers to
 * is stored. Every record found is reported through `onRecord`, so the node can tell which
 * live records nothing refers to (orphans).
 *
 * A vault's records are its head, its objects and its history index (historyIndex.ts); the
 * check of a fresh node reporting no orphans guards that.
 */
/** Git treats the empty tree as always present; Vault does too (it never reads it). */
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
/** A tree entry for a submodule names a commit of another repository: not ours to find. */
const GITLINK_MODE = '160000';
const OID = /^[0-9a-f]{40}$/;

export type ProblemKind =
  /** A record's bytes fail decryption: altered or damaged on disk. */
  | 'damaged-record'
  /** A record the node needs is absent (node info, vault registry, a vault's head). */
  | 'missing-record'
  /** A record decrypts but its content is malformed. */
  | 'bad-record'
  /** HEAD names a commit that is not stored. */
  | 'dangling-ref'
  /** A commit or tree refers to an object that is not stored. */
  | 'missing-object'
  /** An object's SHA-1 ("type size\0content") is not its id. */
  | 'hash-mismatch'
  /** An object is malformed, or not of the type its referrer says. */
  | 'bad-object'
  /** A live record that nothing refers to: costs space, loses nothing (not damage). */
  | 'orphan-record';

export interface CheckProblem {
  kind: ProblemKind;
  /** False only for orphans. */
  damage: boolean;
  /** One line, never a secret value. */
  message: string;
  vault?: string;
  oid?: string;
  /** Where in the vault's tree the object was first reached ('' is the root). */
  path?: string;
  /** The record's name in the node keyspace, or for an orphan its store id (hex). */
  record?: string;
}

export interface ObjectCounts {
  commits: number;
  trees: number;
  blobs: number;
}

/** Called for every record the check found stored (so the rest of the live records are orphans). */
export type RecordSeen = (keyspace: Keyspace, name: string) => void;

type ObjectType = 'commit' | 'tree' | 'blob';

interface Reference {
  oid: string;
  type: ObjectType;
  path: string;
  /** The commit this object was reached from (absent for HEAD's own commit). */
  commit?: string;
}

const short = (oid: string) => oid.slice(0, 12);

/** Read a record; 'damaged' when its bytes fail their integrity check. */
function readRecord(store: LogStore, keyspace: Keyspace, name: string): Buffer | 'damaged' | undefined {
  try {
    return store.get(keyspace, name);
  } catch (error) {
    if (isKeynodeError(error, 'ERR_INTEGRITY')) return 'damaged';
    throw error;
  }
}

/**
 * An object's canonical bytes through objectRecords (a delta tree is rebuilt and verified
 * there); 'damaged' when a record it needs fails its integrity check or a delta does not
 * rebuild to its id. Every record read, chain bases included, is reported as seen.
 */
function readObject(store: LogStore, keyspace: Keyspace, oid: string, onRecord: RecordSeen): Buffer | LargeObjectError | 'damaged' | undefined {
  const readStored = (name: string): Buffer | undefined => {
    let value: Buffer | undefined;
    try {
      value = store.get(keyspace, name);
    } catch (error) {
      onRecord(keyspace, name);
      throw error;
    }
    if (value !== undefined) onRecord(keyspace, name);
    return value;
  };
  try {
    return readWrappedObject(readStored, oid);
  } catch (error) {
    if (error instanceof LargeObjectError) return error; // a large blob's manifest: verified by streaming it
    if (isKeynodeError(error, 'ERR_INTEGRITY')) return 'damaged';
    throw error;
  }
}

/**
 * Verify a large blob by reading it through (every chunk opened, the whole hashed: memory of a
 * chunk), reporting each chunk record as seen. The problem found, or null.
 */
function verifyLargeBlob(store: LogStore, keyspace: Keyspace, large: LargeObjectError, onRecord: RecordSeen): string | null {
  // Every chunk the manifest names is reached, even past a damaged one: none of them is an orphan.
  const manifest = parseLargeBlobManifest(large.manifest);
  if (manifest) for (const name of largeBlobChunkNames(manifest)) if (store.has(keyspace, name)) onRecord(keyspace, name);
  try {
    for (const chunk of largeBlobChunks({ store, keyspace, oid: large.oid, manifest: large.manifest })) void chunk;
    return null;
  } catch (error) {
    if (isKeynodeError(error, 'ERR_INTEGRITY')) return error.message;
    throw error;
  }
}

/** "type size\0content" split and its size checked, or null if malformed. */
function unwrap(wrapped: Buffer): { type: string; content: Buffer } | null {
  const space = wrapped.indexOf(0x20);
  const nul = wrapped.indexOf(0);
  if (space < 0 || nul < space) return null;
  const size = wrapped.toString('ascii', space + 1, nul);
  const content = wrapped.subarray(nul + 1);
  if (!/^(0|[1-9][0-9]*)$/.test(size) || Number(size) !== content.length) return null;
  return { type: wrapped.toString('ascii', 0, space), content };
}

/** The tree and parents a commit names (its header, up to the first empty line), or null. */
function commitLinks(content: Buffer): { tree: string; parents: string[] } | null {
  const end = content.indexOf('\n\n');
  const lines = content.toString('utf8', 0, end < 0 ? content.length : end).split('\n');
  const tree = /^tree ([0-9a-f]{40})$/.exec(lines[0] ?? '')?.[1];
  if (!tree) return null;
  const parents: string[] = [];
  for (const line of lines.slice(1)) {
    if (!line.startsWith('parent ')) break;
    const parent = line.slice('parent '.length);
    if (!OID.test(parent)) return null;
    parents.push(parent);
  }
  return { tree, parents };
}

/**
 * Check one vault: its head, then every object reachable from it, each read once. Returns what
 * was counted and found wrong; never throws for damage (only for I/O failures).
 */
export function checkVaultObjects(options: { vault: string; store: LogStore; keyspace: Keyspace; onRecord: RecordSeen }): {
  counts: ObjectCounts;
  problems: CheckProblem[];
} {
  const { vault, store, keyspace, onRecord } = options;
  const counts: ObjectCounts = { commits: 0, trees: 0, blobs: 0 };
  const problems: CheckProblem[] = [];
  const damage = (kind: ProblemKind, message: string, extra: Partial<CheckProblem> = {}) =>
    problems.push({ kind, damage: true, message: `vault "${vault}": ${message}`, vault, ...extra });

  if (!store.has(keyspace, HEAD_RECORD)) {
    damage('missing-record', 'its head record is missing', { record: HEAD_RECORD });
    return { counts, problems };
  }
  onRecord(keyspace, HEAD_RECORD);
  const head = readRecord(store, keyspace, HEAD_RECORD);
  if (head === 'damaged' || head === undefined) {
    damage('damaged-record', 'its head record failed its integrity check', { record: HEAD_RECORD });
    return { counts, problems };
  }
  const headOid = head.toString('ascii');
  if (!OID.test(headOid)) {
    damage('bad-record', 'its head record is not a commit id', { record: HEAD_RECORD });
    return { counts, problems };
  }
  if (!store.has(keyspace, `obj/${headOid}`)) {
    damage('dangling-ref', `HEAD points to commit ${short(headOid)}, which is not stored`, { oid: headOid });
    return { counts, problems };
  }

  const seen = new Set<string>();
  const commitParents = new Map<string, string[]>();
  const pending: Reference[] = [{ oid: headOid, type: 'commit', path: '' }];
  while (pending.length > 0) {
    const ref = pending.pop()!;
    // By type too: an id referenced as the wrong type must not hide the object's real references.
    const key = `${ref.type} ${ref.oid}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const where = `${ref.type} ${short(ref.oid)}${ref.type === 'commit' ? '' : ` at "${ref.path}"`}${ref.commit ? ` (in commit ${short(ref.commit)})` : ''}`;
    const about = { oid: ref.oid, ...(ref.type === 'commit' ? {} : { path: ref.path }) };
    // One lookup per object (no has() first): most of a check's time is these reads.
    const wrapped = readObject(store, keyspace, ref.oid, onRecord);
    if (wrapped === undefined) {
      if (ref.oid !== EMPTY_TREE) damage('missing-object', `${where} is missing`, about);
      continue;
    }
    if (wrapped === 'damaged') {
      damage('damaged-record', `${where} failed its integrity check`, about);
      continue;
    }
    if (wrapped instanceof LargeObjectError) {
      if (ref.type !== 'blob') damage('bad-object', `${where} is a large blob`, about);
      else {
        const problem = verifyLargeBlob(store, keyspace, wrapped, onRecord);
        if (problem) damage('damaged-record', `${where}: ${problem}`, about);
        else counts.blobs++;
      }
      continue;
    }
    if (createHash('sha1').update(wrapped).digest('hex') !== ref.oid) {
      damage('hash-mismatch', `${where} does not hash to its id`, about);
      continue;
    }
    const object = unwrap(wrapped);
    if (!object || object.type !== ref.type) {
      damage('bad-object', `${where} is ${object ? `a ${object.type}` : 'malformed'}`, about);
      continue;
    }
    if (ref.type === 'commit') {
      const links = commitLinks(object.content);
      if (!links) {
        damage('bad-object', `${where} is malformed`, about);
        continue;
      }
      counts.commits++;
      commitParents.set(ref.oid, links.parents);
      for (const parent of links.parents) pending.push({ oid: parent, type: 'commit', path: '', commit: ref.oid });
      pending.push({ oid: links.tree, type: 'tree', path: '', commit: ref.oid });
    } else if (ref.type === 'tree') {
      const entries = parseTreeContent(object.content);
      if (!entries) {
        damage('bad-object', `${where} is malformed`, about);
        continue;
      }
      counts.trees++;
      for (const [entryName, entry] of entries) {
        if (entry.mode === GITLINK_MODE) continue;
        pending.push({ oid: entry.oid, type: entry.type, path: joinPath(ref.path, entryName), commit: ref.commit });
      }
    } else {
      counts.blobs++;
    }
  }
  const indexProblems = checkIndexRecords({
    read: (name) => {
      const bytes = readRecord(store, keyspace, name);
      return bytes === 'damaged' ? undefined : bytes;
    },
    has: (name) => store.has(keyspace, name),
    commits: commitParents,
    onRecord: (name) => onRecord(keyspace, name),
  });
  for (const message of indexProblems) damage('bad-record', message);
  return { counts, problems };
}

/**
 * Check the vault registry and every vault it lists. `registryReadable` is false when the
 * registry itself is missing, damaged or malformed: then no vault could be checked, and the
 * node cannot tell orphans from the records of vaults it could not list.
 */
export function checkVaults(options: { store: LogStore; nodeKeyspace: Keyspace; onRecord: RecordSeen }): {
  vaults: number;
  registryReadable: boolean;
  counts: ObjectCounts;
  problems: CheckProblem[];
} {
  const { store, nodeKeyspace, onRecord } = options;
  const counts: ObjectCounts = { commits: 0, trees: 0, blobs: 0 };
  const problems: CheckProblem[] = [];
  const unreadable = (kind: ProblemKind, message: string) => {
    problems.push({ kind, damage: true, message, record: REGISTRY_RECORD });
    return { vaults: 0, registryReadable: false, counts, problems };
  };
  if (!store.has(nodeKeyspace, REGISTRY_RECORD)) return unreadable('missing-record', 'the vault registry record is missing');
  onRecord(nodeKeyspace, REGISTRY_RECORD);
  const raw = readRecord(store, nodeKeyspace, REGISTRY_RECORD);
  if (raw === 'damaged' || raw === undefined) return unreadable('damaged-record', 'the vault registry record failed its integrity check');
  let entries: unknown[];
  try {
    entries = decodeRecord(registryEntriesCheck, raw, 'the vault registry record').vaults;
  } catch {
    return unreadable('bad-record', 'the vault registry record is malformed');
  }
  for (const [i, item] of entries.entries()) {
    // Each entry on its own: one bad entry is reported, the other vaults are still checked.
    let entry: { name: string; key: string } | null = null;
    try {
      entry = vaultRecordCheck(item, `vaults[${i}]`);
    } catch (error) {
      if (!(error instanceof CodecError)) throw error;
    }
    const key = entry ? Buffer.from(entry.key, 'base64') : null;
    const name = (item as { name?: unknown } | null)?.name;
    const vault = entry?.name ?? (typeof name === 'string' ? name : '?');
    if (!key || key.length !== 32) {
      problems.push({
        kind: 'bad-record',
        damage: true,
        message: `vault "${vault}": its registry entry is malformed or has no valid key`,
        vault,
        record: REGISTRY_RECORD,
      });
      continue;
    }
    const result = checkVaultObjects({ vault, store, keyspace: new Keyspace(key), onRecord });
    counts.commits += result.counts.commits;
    counts.trees += result.counts.trees;
    counts.blobs += result.counts.blobs;
    problems.push(...result.problems);
  }
  return { vaults: entries.length, registryReadable: true, counts, problems };
}
