import { KeynodeError } from '../errors.js';
import { baseName, joinPath, parentOf, splitPath } from './paths.js';

export const TREE_MODE = '040000';
export const BLOB_MODE = '100644';

export interface TreeEntry {
  mode: string;
  type: 'blob' | 'tree';
  oid: string;
}

export type Tree = ReadonlyMap<string, TreeEntry>;

/**
 * Parsed git trees by object id. Trees are content-addressed and immutable, so a cached parse
 * is valid for every version that shares it; the cache is bounded by total entries (LRU).
 */
export class TreeCache {
  private readonly trees = new Map<string, Tree>();
  private entries = 0;

  constructor(
    private readonly load: (oid: string) => Promise<Tree>,
    private readonly maxEntries = 200_000,
  ) {}

  async get(oid: string): Promise<Tree> {
    const cached = this.trees.get(oid);
    if (cached) {
      this.trees.delete(oid);
      this.trees.set(oid, cached);
      return cached;
    }
    const tree = await this.load(oid);
    this.put(oid, tree);
    return tree;
  }

  put(oid: string, tree: Tree): void {
    if (this.trees.has(oid)) return;
    this.trees.set(oid, tree);
    this.entries += tree.size + 1;
    for (const [old, oldTree] of this.trees) {
      if (this.entries <= this.maxEntries || old === oid) break;
      this.trees.delete(old);
      this.entries -= oldTree.size + 1;
    }
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

/**
 * Pending edits to a tree. Directories touched by an edit are copied (path copying), so the
 * committed tree and everything cached stay untouched until the new root is written.
 */
export class TreeDraft {
  /** Copies of edited directories, by directory path ('' is the root). */
  private readonly dirs = new Map<string, Map<string, TreeEntry>>();

  constructor(
    private readonly trees: TreeCache,
    private readonly rootOid: string,
  ) {}

  /** Current entries of a directory, or null if it does not exist. */
  private async entriesOf(dir: string): Promise<ReadonlyMap<string, TreeEntry> | null> {
    const draft = this.dirs.get(dir);
    if (draft) return draft;
    if (dir === '') return this.trees.get(this.rootOid);
    const parent = await this.entriesOf(parentOf(dir));
    const entry = parent?.get(baseName(dir));
    if (!entry) return null;
    if (entry.type !== 'tree') throw new KeynodeError('ERR_NOT_A_DIRECTORY', `"${dir}" is a secret, not a directory`, { path: dir });
    return this.trees.get(entry.oid);
  }

  async lookup(path: string): Promise<TreeEntry | null> {
    if (path === '') return { mode: TREE_MODE, type: 'tree', oid: this.rootOid };
    const parent = await this.entriesOf(parentOf(path));
    return parent?.get(baseName(path)) ?? null;
  }

  /** A writable copy of a directory, created (with its parents) when missing. */
  private async writableDir(dir: string): Promise<Map<string, TreeEntry>> {
    const existing = this.dirs.get(dir);
    if (existing) return existing;
    const current = await this.entriesOf(dir);
    const copy = new Map(current ?? []);
    if (dir !== '') {
      const parent = await this.writableDir(parentOf(dir));
      parent.set(baseName(dir), { mode: TREE_MODE, type: 'tree', oid: '' });
    }
    this.dirs.set(dir, copy);
    return copy;
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
    if (entry) parent.set(baseName(path), entry);
    else parent.delete(baseName(path));
  }

  /** Create an empty directory at `path` (parents too). */
  async makeDir(path: string): Promise<void> {
    await this.writableDir(path);
  }

  /** Write every edited tree, deepest first, and return the new root tree id. */
  async write(writeTree: (entries: Tree) => string): Promise<string> {
    const order = [...this.dirs.keys()].sort((a, b) => splitPath(b).length - splitPath(a).length);
    let root = this.rootOid;
    for (const dir of order) {
      const entries = this.dirs.get(dir)!;
      const oid = writeTree(entries);
      // Cached as is: this draft map is never changed again (only its parent's entry is).
      this.trees.put(oid, entries);
      if (dir === '') root = oid;
      else this.dirs.get(parentOf(dir))!.set(baseName(dir), { mode: TREE_MODE, type: 'tree', oid });
    }
    return root;
  }
}

/** Every path under a tree, depth first, sorted by name; directories included when asked. */
export async function walkTree(
  trees: TreeCache,
  oid: string,
  prefix: string,
  visit: (path: string, entry: TreeEntry) => void,
): Promise<void> {
  const tree = await trees.get(oid);
  for (const name of [...tree.keys()].sort()) {
    const entry = tree.get(name)!;
    const path = joinPath(prefix, name);
    visit(path, entry);
    if (entry.type === 'tree') await walkTree(trees, entry.oid, path, visit);
  }
}
