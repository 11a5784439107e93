import { createHash } from 'node:crypto';
import { KeynodeError } from '../errors.js';
import { TREE_CACHE_MAX_BYTES } from '../constants.js';
import { baseName, joinPath, parentOf, splitPath } from './paths.js';

export const TREE_MODE = '040000';
export const BLOB_MODE = '100644';

export interface TreeEntry {
  mode: string;
  type: 'blob' | 'tree';
  oid: string;
}

export type Tree = ReadonlyMap<string, TreeEntry>;

/** Pending changes to one directory: an entry to put, or null to remove the name. */
export type TreeChanges = ReadonlyMap<string, TreeEntry | null>;

const SPACE = 0x20;
const SURROGATE_OR_ABOVE = /[\ud800-\uffff]/;
const SLASH = 0x2f;
/**
 * Entries per chunk of a CompactTree. A write copies only the chunks it touches (~10 KB each),
 * so a change in a directory of a million entries copies kilobytes, not the 40 MB tree.
 */
const CHUNK_ENTRIES = 256;

/** Work counters (tests assert on them instead of timing). */
export const treeCounters = {
  /** Entries parsed from canonical tree bytes (loading a stored tree). */
  entriesParsed: 0,
  /** Entries copied or encoded into new tree chunks (writing a tree). */
  entriesWritten: 0,
};

/** A run of canonical tree entries ("MODE NAME\0" + 20-byte id each) and where each starts. */
interface Chunk {
  readonly content: Buffer;
  readonly offsets: Uint32Array;
}

/** Git compares a directory as if its name ended in '/': the key is the name bytes plus that. */
function compareKeys(a: Uint8Array, aStart: number, aLength: number, aTree: boolean, b: Uint8Array, bStart: number, bLength: number, bTree: boolean): number {
  const aTotal = aLength + (aTree ? 1 : 0);
  const bTotal = bLength + (bTree ? 1 : 0);
  const n = aTotal < bTotal ? aTotal : bTotal;
  for (let k = 0; k < n; k++) {
    const x = k < aLength ? a[aStart + k]! : SLASH;
    const y = k < bLength ? b[bStart + k]! : SLASH;
    if (x !== y) return x - y;
  }
  return aTotal - bTotal;
}

/** A tree's mode field is "40000" (git) or "040000" (zero-padded, accepted on read). */
function isTreeMode(buffer: Uint8Array, start: number, space: number): boolean {
  const length = space - start;
  return (length === 5 && buffer[start] === 0x34) || (length === 6 && buffer[start] === 0x30 && buffer[start + 1] === 0x34);
}

/** A key to search for: name bytes and whether it names a tree. */
interface Key {
  bytes: Buffer;
  tree: boolean;
}

/** Compare the entry starting at `at` in `buffer` with `key`. */
function compareEntryWithKey(buffer: Buffer, at: number, key: Key): number {
  const space = buffer.indexOf(SPACE, at);
  const nul = buffer.indexOf(0, space + 1);
  return compareKeys(buffer, space + 1, nul - space - 1, isTreeMode(buffer, at, space), key.bytes, 0, key.bytes.length, key.tree);
}

function readEntry(buffer: Buffer, at: number): [string, TreeEntry] {
  const space = buffer.indexOf(SPACE, at);
  const nul = buffer.indexOf(0, space + 1);
  const mode = buffer.toString('latin1', at, space);
  const tree = mode === '40000' || mode === '040000';
  return [
    buffer.toString('utf8', space + 1, nul),
    { mode: tree ? TREE_MODE : mode.padStart(6, '0'), type: tree ? 'tree' : 'blob', oid: buffer.toString('hex', nul + 1, nul + 21) },
  ];
}

/** One entry in canonical form, as git writes it ("40000" for trees, no leading zeros). */
export function encodeTreeEntry(name: string, entry: TreeEntry): Buffer {
  if (!/^[0-9a-f]{40}$/.test(entry.oid)) throw new KeynodeError('ERR_INTERNAL', 'a tree entry without an object id was written');
  const prefix = `${entry.type === 'tree' ? '40000' : entry.mode.replace(/^0+/, '')} ${name}\0`;
  const length = Buffer.byteLength(prefix);
  const bytes = Buffer.allocUnsafe(length + 20);
  bytes.write(prefix, 0, 'utf8');
  bytes.write(entry.oid, length, 'hex');
  return bytes;
}

/** The chunk content from `offsets[i]` to the end of entry `i`. */
function entryEnd(chunk: Chunk, i: number): number {
  return i + 1 < chunk.offsets.length ? chunk.offsets[i + 1]! : chunk.content.length;
}

/** Lower bound of `key` in a chunk: the index of the first entry not below it, and whether it is equal. */
function searchChunk(chunk: Chunk, key: Key): { index: number; found: boolean } {
  let low = 0;
  let high = chunk.offsets.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareEntryWithKey(chunk.content, chunk.offsets[middle]!, key) < 0) low = middle + 1;
    else high = middle;
  }
  const found = low < chunk.offsets.length && compareEntryWithKey(chunk.content, chunk.offsets[low]!, key) === 0;
  return { index: low, found };
}

/** Build chunks from entries already in order (content slices shared, never copied). */
function chunksOf(content: Buffer, offsets: Uint32Array, count: number): Chunk[] {
  const chunks: Chunk[] = [];
  for (let first = 0; first < count; first += CHUNK_ENTRIES) {
    const last = Math.min(count, first + CHUNK_ENTRIES);
    const start = offsets[first]!;
    const end = last < count ? offsets[last]! : content.length;
    const local = offsets.slice(first, last);
    for (let i = 0; i < local.length; i++) local[i]! -= start;
    chunks.push({ content: content.subarray(start, end), offsets: local });
  }
  return chunks;
}

/** A new entry waiting to be merged into a chunk, before base entry `index`. */
interface Insertion {
  index: number;
  key: Key;
  /** The key as a string (name, plus '/' for a tree): ordered like its bytes below U+D800. */
  sortKey: string;
  bytes: Buffer;
}

/**
 * A git tree held as its canonical bytes, in chunks, with the start of every entry: lookups
 * are binary searches, a change copies one chunk, and the SHA-1 is taken over the chunks as
 * they are. A million entries cost about their canonical size (~40 MB), not a Map of objects.
 * Immutable: `with` returns a new tree that shares every untouched chunk.
 */
export class CompactTree implements ReadonlyMap<string, TreeEntry> {
  static readonly EMPTY = new CompactTree([], 0, 0);

  private constructor(
    private readonly chunks: readonly Chunk[],
    readonly size: number,
    /** Bytes of the canonical content (what follows "tree SIZE\0"). */
    readonly contentBytes: number,
  ) {}

  /** Memory this tree holds (chunk bytes and entry offsets), for the cache's byte budget. */
  get bytes(): number {
    return this.contentBytes + this.size * 4 + this.chunks.length * 64 + 64;
  }

  /**
   * Parse canonical tree content. Entries out of git's order (never written by keynode or git)
   * are sorted, keeping the last of duplicate names as a Map would. Null when malformed.
   */
  static parse(content: Buffer): CompactTree | null {
    const offsets = new Uint32Array(Math.floor(content.length / 22) + 1);
    let count = 0;
    let sorted = true;
    let previous = -1;
    let previousName = 0;
    let previousLength = 0;
    let previousTree = false;
    for (let at = 0; at < content.length;) {
      const space = content.indexOf(SPACE, at);
      const nul = space < 0 ? -1 : content.indexOf(0, space + 1);
      if (space <= at || nul < 0 || nul + 21 > content.length) return null;
      const tree = isTreeMode(content, at, space);
      if (previous >= 0 && sorted && compareKeys(content, previousName, previousLength, previousTree, content, space + 1, nul - space - 1, tree) >= 0)
        sorted = false;
      offsets[count++] = at;
      previous = at;
      previousName = space + 1;
      previousLength = nul - space - 1;
      previousTree = tree;
      at = nul + 21;
    }
    treeCounters.entriesParsed += count;
    if (!sorted) {
      const entries = new Map<string, TreeEntry>();
      for (let i = 0; i < count; i++) {
        const [name, entry] = readEntry(content, offsets[i]!);
        entries.set(name, entry);
      }
      return CompactTree.fromEntries(entries);
    }
    return new CompactTree(chunksOf(content, offsets, count), count, content.length);
  }

  static fromEntries(entries: Iterable<readonly [string, TreeEntry]>): CompactTree {
    return CompactTree.EMPTY.with(new Map(entries)).tree;
  }

  /** Where `key` is or would go: chunk index (0 for an empty tree), index in it, found. */
  private locate(key: Key): { chunk: number; index: number; found: boolean } {
    if (this.chunks.length === 0) return { chunk: 0, index: 0, found: false };
    let low = 0;
    let high = this.chunks.length - 1;
    // The last chunk whose first entry is not above the key.
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if (compareEntryWithKey(this.chunks[middle]!.content, 0, key) <= 0) low = middle;
      else high = middle - 1;
    }
    return { chunk: low, ...searchChunk(this.chunks[low]!, key) };
  }

  /** Where the entry named `name` is, as a blob or a tree. */
  private find(name: string): { chunk: number; index: number } | null {
    if (name === '' || name.includes('/') || name.includes('\0')) return null;
    const bytes = Buffer.from(name, 'utf8');
    for (const tree of [false, true]) {
      const place = this.locate({ bytes, tree });
      if (place.found) return place;
    }
    return null;
  }

  get(name: string): TreeEntry | undefined {
    const place = this.find(name);
    if (!place) return undefined;
    const chunk = this.chunks[place.chunk]!;
    return readEntry(chunk.content, chunk.offsets[place.index]!)[1];
  }

  has(name: string): boolean {
    return this.find(name) !== null;
  }

  /** Entries in git's order. */
  *entries(): MapIterator<[string, TreeEntry]> {
    for (const chunk of this.chunks) {
      for (let i = 0; i < chunk.offsets.length; i++) yield readEntry(chunk.content, chunk.offsets[i]!);
    }
  }

  *keys(): MapIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): MapIterator<TreeEntry> {
    for (const [, entry] of this.entries()) yield entry;
  }

  [Symbol.iterator](): MapIterator<[string, TreeEntry]> {
    return this.entries();
  }

  forEach(callback: (value: TreeEntry, key: string, map: ReadonlyMap<string, TreeEntry>) => void): void {
    for (const [name, entry] of this.entries()) callback(entry, name, this);
  }

  /** "tree SIZE\0": the header the object id covers. */
  private header(): Buffer {
    return Buffer.from(`tree ${this.contentBytes}\0`, 'ascii');
  }

  /** The git object id: SHA-1 of "tree SIZE\0" and the canonical content, hashed chunk by chunk. */
  oid(): string {
    const hash = createHash('sha1').update(this.header());
    for (const chunk of this.chunks) hash.update(chunk.content);
    return hash.digest('hex');
  }

  /** The whole object, "tree SIZE\0content" (one copy of the tree: for storing or export). */
  wrapped(): Buffer {
    return Buffer.concat([this.header(), ...this.chunks.map((chunk) => chunk.content)]);
  }

  /** Where each name of `changes` is now, found in one pass over every entry. */
  private scanFor(changes: TreeChanges): Map<string, { chunk: number; index: number }> {
    const places = new Map<string, { chunk: number; index: number }>();
    this.chunks.forEach((chunk, c) => {
      for (let i = 0; i < chunk.offsets.length; i++) {
        const space = chunk.content.indexOf(SPACE, chunk.offsets[i]);
        const name = chunk.content.toString('utf8', space + 1, chunk.content.indexOf(0, space + 1));
        if (changes.has(name)) places.set(name, { chunk: c, index: i });
      }
    });
    return places;
  }

  /**
   * This tree with `changes` applied, and the changes that really differ from it (names removed
   * that were present; entries put that were absent or different). Copies only touched chunks.
   */
  with(changes: TreeChanges): { tree: CompactTree; removed: string[]; upserts: Array<[string, TreeEntry]> } {
    const removed: string[] = [];
    const upserts: Array<[string, TreeEntry]> = [];
    const touched = new Map<number, { removals: Set<number>; insertions: Insertion[] }>();
    const touch = (chunk: number) => {
      let work = touched.get(chunk);
      if (!work) touched.set(chunk, (work = { removals: new Set(), insertions: [] }));
      return work;
    };
    // Many changes (an import, or composing a long delta chain): one pass over the entries
    // instead of binary searches per change, which cost more past a few percent of the tree.
    const bulk = changes.size * 64 > this.size;
    const places = bulk ? this.scanFor(changes) : null;
    const pending: Array<{ name: string; insertion: Insertion }> = [];
    for (const [name, entry] of changes) {
      const place = places ? (places.get(name) ?? null) : this.find(name);
      if (entry === null) {
        if (!place) continue;
        touch(place.chunk).removals.add(place.index);
        removed.push(name);
        continue;
      }
      if (name === '' || name.includes('/') || name.includes('\0')) throw new KeynodeError('ERR_INTERNAL', 'a tree entry name must be one path segment');
      if (place) {
        const chunk = this.chunks[place.chunk]!;
        const current = readEntry(chunk.content, chunk.offsets[place.index]!)[1];
        if (current.oid === entry.oid && current.type === entry.type && (current.type === 'tree' || current.mode === entry.mode)) continue;
        touch(place.chunk).removals.add(place.index);
      }
      const key = { bytes: Buffer.from(name, 'utf8'), tree: entry.type === 'tree' };
      pending.push({ name, insertion: { index: 0, key, sortKey: key.tree ? `${name}/` : name, bytes: encodeTreeEntry(name, entry) } });
      upserts.push([name, entry]);
    }
    if (bulk) {
      const insertions = pending.map((item) => item.insertion);
      sortInsertions(insertions);
      // Sweep the entries once, in order, to find where each new key goes.
      let c = 0;
      let i = 0;
      for (const insertion of insertions) {
        while (c < this.chunks.length) {
          const chunk = this.chunks[c]!;
          if (i >= chunk.offsets.length) {
            if (c + 1 >= this.chunks.length) break;
            c++;
            i = 0;
          } else if (compareEntryWithKey(chunk.content, chunk.offsets[i]!, insertion.key) < 0) i++;
          else break;
        }
        insertion.index = i;
        touch(c).insertions.push(insertion);
      }
    } else {
      for (const { insertion } of pending) {
        const at = this.locate(insertion.key);
        insertion.index = at.index;
        touch(at.chunk).insertions.push(insertion);
      }
    }
    if (touched.size === 0) return { tree: this, removed, upserts };

    const chunks: Chunk[] = [];
    let size = 0;
    let contentBytes = 0;
    const keep = (chunk: Chunk) => {
      chunks.push(chunk);
      size += chunk.offsets.length;
      contentBytes += chunk.content.length;
    };
    const total = Math.max(this.chunks.length, 1);
    for (let c = 0; c < total; c++) {
      const base: Chunk = this.chunks[c] ?? { content: Buffer.alloc(0), offsets: new Uint32Array(0) };
      const work = touched.get(c);
      if (!work) {
        if (base.offsets.length > 0) keep(base);
        continue;
      }
      for (const chunk of rebuildChunk(base, work.removals, work.insertions)) keep(chunk);
    }
    return { tree: new CompactTree(chunks, size, contentBytes), removed, upserts };
  }
}

/** Order insertions by position, then by git's key order. */
function sortInsertions(insertions: Insertion[]): void {
  // UTF-16 order is UTF-8 byte order unless surrogates or U+E000 and above are involved: string
  // comparison is native and much cheaper than comparing bytes (a bulk import sorts every name).
  if (insertions.every((item) => !SURROGATE_OR_ABOVE.test(item.sortKey))) {
    insertions.sort((a, b) => a.index - b.index || (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
  } else {
    insertions.sort((a, b) => a.index - b.index || compareKeys(a.key.bytes, 0, a.key.bytes.length, a.key.tree, b.key.bytes, 0, b.key.bytes.length, b.key.tree));
  }
}

/** Merge removals and insertions into one chunk; a chunk grown past twice the target is split. */
function rebuildChunk(base: Chunk, removals: ReadonlySet<number>, insertions: Insertion[]): Chunk[] {
  sortInsertions(insertions);
  const pieces: Buffer[] = [];
  const offsets: number[] = [];
  let length = 0;
  const add = (bytes: Buffer) => {
    offsets.push(length);
    pieces.push(bytes);
    length += bytes.length;
  };
  let next = 0;
  for (let i = 0; i <= base.offsets.length; i++) {
    while (next < insertions.length && insertions[next]!.index === i) add(insertions[next++]!.bytes);
    if (i < base.offsets.length && !removals.has(i)) add(base.content.subarray(base.offsets[i], entryEnd(base, i)));
  }
  treeCounters.entriesWritten += offsets.length;
  if (offsets.length === 0) return [];
  const content = Buffer.concat(pieces, length);
  const all = Uint32Array.from(offsets);
  if (all.length <= 2 * CHUNK_ENTRIES) return [{ content, offsets: all }];
  return chunksOf(content, all, all.length);
}

/** How a cached tree's record is stored: 0 for a whole tree, else its delta chain's length and bytes. */
export interface TreeRecordInfo {
  depth: number;
  chainBytes: number;
}

export interface LoadedTree {
  tree: CompactTree;
  /** Unknown when the tree was not read from or written to its record by this cache's owner. */
  record?: TreeRecordInfo;
}

interface CacheSlot extends LoadedTree {
  oid: string;
  bytes: number;
}

/**
 * The byte budget tree caches draw on, least recently used first across all of them. Every
 * vault has its own cache and an agent keeps every vault it opened: a budget per cache would
 * bound memory by budget x vaults. One tree larger than the whole budget may be held beside it
 * (the latest such tree, whichever cache holds it).
 */
export class TreeCacheBudget {
  /** Slots of every cache on this budget, least recently used first. */
  private readonly order = new Map<CacheSlot, TreeCache>();
  private oversizeOwner: TreeCache | null = null;
  private usedBytes = 0;

  constructor(readonly maxBytes = TREE_CACHE_MAX_BYTES) {}

  /** Bytes held within the budget by all its caches. */
  get bytes(): number {
    return this.usedBytes;
  }

  /** @internal */
  touch(slot: CacheSlot): void {
    const owner = this.order.get(slot);
    if (!owner) return;
    this.order.delete(slot);
    this.order.set(slot, owner);
  }

  /** @internal Take `slot` in, evicting the least recently used slots (any cache's) past the budget. */
  add(slot: CacheSlot, owner: TreeCache): void {
    this.order.set(slot, owner);
    this.usedBytes += slot.bytes;
    for (const [old, oldOwner] of this.order) {
      if (this.usedBytes <= this.maxBytes || old === slot) break;
      this.order.delete(old);
      this.usedBytes -= old.bytes;
      oldOwner.evicted(old);
    }
  }

  /** @internal `owner` now holds the oversize tree: any other cache lets its own go. */
  takeOversize(owner: TreeCache): void {
    if (this.oversizeOwner && this.oversizeOwner !== owner) this.oversizeOwner.evictedOversize();
    this.oversizeOwner = owner;
  }
}

/** The budget of caches made without one: all the vaults of a process share it. */
export const sharedTreeCacheBudget = new TreeCacheBudget();

/**
 * Parsed git trees by object id, evicting the least recently used past a byte budget shared
 * with the other vaults' caches (TreeCacheBudget). Trees are content-addressed and immutable,
 * so a cached tree is valid for every version that shares it. A tree larger than the whole
 * budget is kept in a slot of its own (the latest such tree only), so working in one huge
 * directory neither reloads it on every read nor evicts every other tree for it; memory is
 * then bounded by the budget plus that one tree.
 */
export class TreeCache {
  private readonly slots = new Map<string, CacheSlot>();
  private oversize: CacheSlot | null = null;
  private usedBytes = 0;
  private readonly budget: TreeCacheBudget;

  constructor(
    private readonly load: (oid: string) => Promise<LoadedTree>,
    /** A budget to share (the process-wide one by default), or a byte count for this cache alone. */
    budget: TreeCacheBudget | number = sharedTreeCacheBudget,
  ) {
    this.budget = typeof budget === 'number' ? new TreeCacheBudget(budget) : budget;
  }

  get maxBytes(): number {
    return this.budget.maxBytes;
  }

  /** Bytes this cache holds within the budget (the oversize slot is not counted). */
  get bytes(): number {
    return this.usedBytes;
  }

  private slot(oid: string): CacheSlot | undefined {
    const slot = this.slots.get(oid);
    if (slot) {
      this.budget.touch(slot);
      return slot;
    }
    return this.oversize?.oid === oid ? this.oversize : undefined;
  }

  async get(oid: string): Promise<CompactTree> {
    const cached = this.slot(oid);
    if (cached) return cached.tree;
    const loaded = await this.load(oid);
    this.put(oid, loaded.tree, loaded.record);
    return loaded.tree;
  }

  /** The cached tree, if any (never loads). */
  peek(oid: string): CompactTree | undefined {
    return this.slot(oid)?.tree;
  }

  /** How the cached tree's record is stored, when known. */
  recordInfo(oid: string): TreeRecordInfo | undefined {
    return (this.slots.get(oid) ?? (this.oversize?.oid === oid ? this.oversize : undefined))?.record;
  }

  has(oid: string): boolean {
    return this.slots.has(oid) || this.oversize?.oid === oid;
  }

  put(oid: string, tree: CompactTree, record?: TreeRecordInfo): void {
    const existing = this.slot(oid);
    if (existing) {
      if (record) existing.record = record;
      return;
    }
    const slot: CacheSlot = { oid, tree, bytes: tree.bytes, ...(record ? { record } : {}) };
    if (slot.bytes > this.budget.maxBytes) {
      this.oversize = slot;
      this.budget.takeOversize(this);
      return;
    }
    this.slots.set(oid, slot);
    this.usedBytes += slot.bytes;
    this.budget.add(slot, this);
  }

  /** @internal The budget dropped `slot`. */
  evicted(slot: CacheSlot): void {
    if (this.slots.get(slot.oid) !== slot) return;
    this.slots.delete(slot.oid);
    this.usedBytes -= slot.bytes;
  }

  /** @internal Another cache holds the oversize tree now. */
  evictedOversize(): void {
    this.oversize = null;
  }

  /** The entry at `path` under the tree `rootOid` ('' is the root itself), or null. */
  async lookup(rootOid: string, path: string): Promise<TreeEntry | null> {
    let entry: TreeEntry = { mode: TREE_MODE, type: 'tree', oid: rootOid };
    for (const segment of splitPath(path)) {
      if (entry.type !== 'tree') return null;
      const next = (await this.get(entry.oid)).get(segment);
      if (!next) return null;
      entry = next;
    }
    return entry;
  }
}

/** One directory's edit: the tree it starts from (and its id, null for a new directory) and the changes. */
export interface DirectoryEdit {
  baseOid: string | null;
  base: CompactTree;
  changes: TreeChanges;
}

export interface WrittenTree {
  oid: string;
  tree: CompactTree;
  record?: TreeRecordInfo;
}

/** A directory being edited: its committed tree plus changes by name. */
class DraftDirectory {
  readonly changes = new Map<string, TreeEntry | null>();

  constructor(
    readonly baseOid: string | null,
    readonly base: CompactTree,
  ) {}

  get(name: string): TreeEntry | undefined {
    const changed = this.changes.get(name);
    if (changed !== undefined) return changed ?? undefined;
    return this.base.get(name);
  }
}

/**
 * Pending edits to a tree. Edited directories hold their changes beside the committed tree
 * (never a copy of it), so the committed tree and everything cached stay untouched until the
 * new root is written, and an edit costs the changes, not the directory's size.
 */
export class TreeDraft {
  /** Edited directories, by directory path ('' is the root). */
  private readonly dirs = new Map<string, DraftDirectory>();

  constructor(
    private readonly trees: TreeCache,
    private readonly rootOid: string,
  ) {}

  /** The committed tree (and its id) or the draft of a directory, or null if it does not exist. */
  private async resolve(dir: string): Promise<DraftDirectory | { oid: string; tree: CompactTree } | null> {
    const draft = this.dirs.get(dir);
    if (draft) return draft;
    if (dir === '') return { oid: this.rootOid, tree: await this.trees.get(this.rootOid) };
    const parent = await this.resolve(parentOf(dir));
    const entry = parent === null ? undefined : parent instanceof DraftDirectory ? parent.get(baseName(dir)) : parent.tree.get(baseName(dir));
    if (!entry) return null;
    if (entry.type !== 'tree') throw new KeynodeError('ERR_NOT_A_DIRECTORY', `"${dir}" is a secret, not a directory`, { path: dir });
    return { oid: entry.oid, tree: await this.trees.get(entry.oid) };
  }

  async lookup(path: string): Promise<TreeEntry | null> {
    if (path === '') return { mode: TREE_MODE, type: 'tree', oid: this.rootOid };
    const parent = await this.resolve(parentOf(path));
    if (parent === null) return null;
    return (parent instanceof DraftDirectory ? parent.get(baseName(path)) : parent.tree.get(baseName(path))) ?? null;
  }

  /** A writable draft of a directory, created (with its parents) when missing. */
  private async writableDir(dir: string): Promise<DraftDirectory> {
    const existing = this.dirs.get(dir);
    if (existing) return existing;
    const current = await this.resolve(dir);
    const draft =
      current instanceof DraftDirectory ? current : current ? new DraftDirectory(current.oid, current.tree) : new DraftDirectory(null, CompactTree.EMPTY);
    if (dir !== '') {
      const parent = await this.writableDir(parentOf(dir));
      parent.changes.set(baseName(dir), { mode: TREE_MODE, type: 'tree', oid: '' });
    }
    this.dirs.set(dir, draft);
    return draft;
  }

  private dropDraftsUnder(path: string): void {
    for (const dir of this.dirs.keys()) {
      if (dir === path || dir.startsWith(path + '/')) this.dirs.delete(dir);
    }
  }

  /** Put an entry at `path` (creating parent directories), or remove it with null. */
  async set(path: string, entry: TreeEntry | null): Promise<void> {
    this.dropDraftsUnder(path);
    const parent = await this.writableDir(parentOf(path));
    parent.changes.set(baseName(path), entry);
  }

  /** Create an empty directory at `path` (parents too). */
  async makeDir(path: string): Promise<void> {
    await this.writableDir(path);
  }

  /** Write every edited tree, deepest first, and return the new root tree id. */
  async write(writeTree: (edit: DirectoryEdit) => WrittenTree): Promise<string> {
    const order = [...this.dirs.keys()].sort((a, b) => splitPath(b).length - splitPath(a).length);
    let root = this.rootOid;
    for (const dir of order) {
      const draft = this.dirs.get(dir)!;
      const written = writeTree({ baseOid: draft.baseOid, base: draft.base, changes: draft.changes });
      this.trees.put(written.oid, written.tree, written.record);
      if (dir === '') root = written.oid;
      else this.dirs.get(parentOf(dir))!.changes.set(baseName(dir), { mode: TREE_MODE, type: 'tree', oid: written.oid });
    }
    return root;
  }
}

/** Every path under a tree, depth first, sorted by name; directories included when asked. */
export async function walkTree(trees: TreeCache, oid: string, prefix: string, visit: (path: string, entry: TreeEntry) => void): Promise<void> {
  // Git's order differs from name order only around '/' and non-ASCII: a near-sorted list sorts fast.
  const entries = [...(await trees.get(oid)).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, entry] of entries) {
    const path = joinPath(prefix, name);
    visit(path, entry);
    if (entry.type === 'tree') await walkTree(trees, entry.oid, path, visit);
  }
}

/** Directories up to this size are sorted whole (exact, cheap); larger ones are walked in place. */
const SORT_WHOLE_MAX_ENTRIES = 4_096;
/** Entries per page of `walkTreePages`: one await per page, not per entry, keeps a walk of millions fast. */
const WALK_PAGE_ENTRIES = 1_000;

export interface WalkedEntry {
  path: string;
  entry: TreeEntry;
}

/**
 * What `walkTree` visits, in the same order, in pages: memory is the path from the root to the
 * current directory plus one page, never the listing, so a listing of any size can stream and
 * its reader may stop early. A large directory is not copied and sorted: git's order differs
 * from name order only where a tree "T" (keyed "T/") follows names "T" + a character below '/'
 * ("T-x", "T.y"); each such name makes the walk look "T" up and visit it first. (Names with
 * characters at or above U+D800, where UTF-16 and UTF-8 orders part, are exact only in small
 * directories.)
 */
export async function* walkTreePages(
  trees: TreeCache,
  oid: string,
  prefix: string,
  options: { pageEntries?: number; sortWholeMaxEntries?: number } = {},
): AsyncGenerator<WalkedEntry[], void, undefined> {
  const page: WalkedEntry[] = [];
  yield* walkInto(trees, oid, prefix, page, options.pageEntries ?? WALK_PAGE_ENTRIES, options.sortWholeMaxEntries ?? SORT_WHOLE_MAX_ENTRIES);
  if (page.length > 0) yield page;
}

/** Fill `page`, yielding it (emptied) whenever it is full. */
async function* walkInto(
  trees: TreeCache,
  oid: string,
  prefix: string,
  page: WalkedEntry[],
  pageEntries: number,
  sortWholeMax: number,
): AsyncGenerator<WalkedEntry[], void, undefined> {
  const tree = await trees.get(oid);
  const visit = async function* (path: string, entry: TreeEntry): AsyncGenerator<WalkedEntry[], void, undefined> {
    page.push({ path, entry });
    if (page.length >= pageEntries) yield page.splice(0);
    if (entry.type === 'tree') yield* walkInto(trees, entry.oid, path, page, pageEntries, sortWholeMax);
  };
  if (tree.size <= sortWholeMax) {
    const entries = [...tree.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [name, entry] of entries) {
      if (entry.type === 'tree' || page.length + 1 >= pageEntries) yield* visit(joinPath(prefix, name), entry);
      else page.push({ path: joinPath(prefix, name), entry }); // the common case, without a generator
    }
    return;
  }
  const visitedEarly = new Set<string>();
  for (const [name, entry] of tree.entries()) {
    if (entry.type === 'tree' && visitedEarly.delete(name)) continue;
    for (let at = 1; at < name.length; at++) {
      if (name.charCodeAt(at) >= 0x2f) continue;
      const before = name.slice(0, at);
      const early = visitedEarly.has(before) ? undefined : tree.get(before);
      if (early?.type !== 'tree') continue;
      visitedEarly.add(before);
      yield* visit(joinPath(prefix, before), early);
    }
    if (entry.type === 'tree' || page.length + 1 >= pageEntries) yield* visit(joinPath(prefix, name), entry);
    else page.push({ path: joinPath(prefix, name), entry });
  }
}

/** `walkTreePages` one entry at a time. */
export async function* walkTreeEntries(
  trees: TreeCache,
  oid: string,
  prefix: string,
  sortWholeMaxEntries = SORT_WHOLE_MAX_ENTRIES,
): AsyncGenerator<WalkedEntry, void, undefined> {
  for await (const page of walkTreePages(trees, oid, prefix, { sortWholeMaxEntries })) yield* page;
}
