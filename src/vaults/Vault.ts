import { createHash } from 'node:crypto';
import git from 'isomorphic-git';
import { KeynodeError, isKeynodeError } from '../errors.js';
import type { BatchOp, LogStore } from '../storage/LogStore.js';
import type { Keyspace } from '../storage/Keyspace.js';
import { writeFileAtomic } from '../storage/files.js';
import { EncryptedGitFs, GITDIR } from './EncryptedGitFs.js';
import { encodeBlob } from './gitObjects.js';
import { LargeObjectError, objectRecordName } from './objectRecords.js';
import { LARGE_BLOB_THRESHOLD_BYTES } from '../constants.js';
import { assertBundleExportable, largeBlobChunkRecords, readLargeValueWhole, stageValue, type ValueSource } from './valueStreams.js';
import { History, changedPaths, type DiffEntry, type LogCommit } from './history.js';
import { HistoryIndex, INDEX_META_RECORD, IndexInconsistent, WIDE_CHANGE_PATHS, commitIndexRecordNames, commitRecordName, indexError } from './historyIndex.js';
import { ObjectStore } from './objects.js';
import { baseName, joinPath, normalizeSecretPath } from './paths.js';
import { BLOB_MODE, CompactTree, TreeCache, TreeDraft, walkTreePages, type DirectoryEdit, type LoadedTree, type TreeEntry, type WrittenTree } from './trees.js';
import { loadStoredTree, writeStoredTree } from './treeStore.js';

export interface Author {
  name: string;
  email: string;
}

export interface CommitInfo {
  commit: string;
  message: string;
  author: string;
  /** ISO 8601. */
  time: string;
  parents: string[];
}

export interface WriteResult {
  commit: string;
  /** False when the change left the tree as it was (no commit was made). */
  changed: boolean;
}

export interface SecretEntry {
  path: string;
  type: 'secret' | 'dir';
}

export interface SecretStat {
  path: string;
  type: 'secret' | 'dir';
  /** Bytes for a secret, entries for a directory. */
  size: number;
  /** The last commit that changed this path. */
  modified: CommitInfo | null;
}

export type { DiffEntry } from './history.js';

export type Edit = { path: string; value: Uint8Array } | { path: string; delete: true } | { path: string; entry: TreeEntry } | { path: string; mkdir: true };

/** The record holding a vault's current commit id. */
export const HEAD_RECORD = 'head';
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

function commitInfo(oid: string, commit: LogCommit): CommitInfo {
  return {
    commit: oid,
    message: commit.message.replace(/\n$/, ''),
    author: commit.author.name,
    time: new Date(commit.author.timestamp * 1000).toISOString(),
    parents: commit.parents,
  };
}

/**
 * A vault: a tree of secrets with git history, stored encrypted under the vault's own key.
 *
 * Writes build only what changes (one blob, the trees on its path, one commit) and land with
 * the new head in a single durable store batch; nothing else is re-read. Writes are serialised
 * per vault; reads never see a change before it is durable.
 */
export class Vault {
  private readonly objects: ObjectStore;
  private readonly index: HistoryIndex;
  private readonly history: History;
  private readonly trees: TreeCache;
  /** The commit the stored history index is complete for (null until read). */
  private indexedHead: string | null = null;
  private head: string;
  private rootTree: string;

  constructor(
    private vaultName: string,
    private readonly store: LogStore,
    private readonly keyspace: Keyspace,
    private readonly author: Author,
    head: { commit: string; tree: string },
  ) {
    this.objects = new ObjectStore(store, keyspace, () => this.vaultName);
    this.trees = new TreeCache((oid) => this.loadTree(oid));
    this.index = new HistoryIndex(store, keyspace, this.objects);
    this.history = new History(this.objects, this.index, this.trees, () => this.vaultName);
    this.head = head.commit;
    this.rootTree = head.tree;
  }

  /** Open an existing vault from its head record. */
  static async open(name: string, store: LogStore, keyspace: Keyspace, author: Author): Promise<Vault> {
    const head = store.get(keyspace, HEAD_RECORD)?.toString('ascii');
    if (!head) throw new KeynodeError('ERR_INTEGRITY', `vault "${name}" has no head record`, { vault: name });
    const vault = new Vault(name, store, keyspace, author, { commit: head, tree: EMPTY_TREE });
    vault.rootTree = vault.objects.readCommit(head).tree;
    return vault;
  }

  /** Build a new vault's first commit; the caller writes the returned ops in its own batch. */
  static async initialize(name: string, store: LogStore, keyspace: Keyspace, author: Author, message: string) {
    const vault = new Vault(name, store, keyspace, author, { commit: '', tree: EMPTY_TREE });
    const tree = vault.writeTreeObject({ baseOid: null, base: CompactTree.EMPTY, changes: new Map() }).oid;
    const commit = vault.writeCommitObject(tree, [], message);
    vault.index.addCommit(commit, { parents: [], time: vault.objects.readCommit(commit).committer.timestamp }, []);
    vault.index.setIndexedHead(commit);
    const ops = [...vault.objects.takePending(), ...vault.index.takePending(), { keyspace, name: HEAD_RECORD, value: Buffer.from(commit, 'ascii') }];
    vault.indexedHead = commit;
    vault.head = commit;
    vault.rootTree = tree;
    return { vault, ops };
  }

  get name(): string {
    return this.vaultName;
  }

  /** Called by VaultManager on rename. */
  setName(name: string): void {
    this.vaultName = name;
  }

  get headCommit(): string {
    return this.head;
  }

  // --- reading -------------------------------------------------------------------------

  /** Turn a store integrity failure into one naming this vault and the path being read. */
  private integrity(error: unknown, path?: string): unknown {
    if (!isKeynodeError(error, 'ERR_INTEGRITY')) return error;
    const where = path === undefined ? `vault "${this.vaultName}"` : `${this.vaultName}:${path}`;
    return new KeynodeError('ERR_INTEGRITY', `integrity check failed reading ${where}: the node's data was altered or damaged`, {
      vault: this.vaultName,
      path,
    });
  }

  /** Raw object bytes, SHA-1 verified; a missing object that a tree or commit refers to is damage. */
  private readRawObject(oid: string): { type: string; content: Buffer } {
    return this.objects.readObject(oid);
  }

  /** Counters of work done (objects and index records read), for tests and benchmarks. */
  get workCounters(): { objectReads: number; indexRecordReads: number } {
    return { objectReads: this.objects.counters.objectReads, indexRecordReads: this.index.counters.recordReads };
  }

  /** A tree's record, as stored (a delta or the whole tree); staged records are already whole. */
  private readTreeRecord = (oid: string): Uint8Array | undefined => this.store.get(this.keyspace, objectRecordName(oid)) ?? this.objects.readWrapped(oid);

  /** A tree from its record (SHA-1 verified, delta chains rebuilt from the nearest cached tree). */
  private async loadTree(oid: string): Promise<LoadedTree> {
    if (oid === EMPTY_TREE) return { tree: CompactTree.EMPTY };
    return loadStoredTree({ oid, readRecord: this.readTreeRecord, cached: (id) => this.trees.peek(id) });
  }

  private readBlob(oid: string): Buffer {
    return this.objects.readBlob(oid);
  }

  /** The root tree of a version ('HEAD' when omitted). */
  private async treeOf(version?: string): Promise<string> {
    if (version === undefined) return this.rootTree;
    return this.objects.readCommit(await this.resolveCommit(version)).tree;
  }

  private async entryAt(path: string, version?: string): Promise<TreeEntry | null> {
    return this.trees.lookup(await this.treeOf(version), path);
  }

  /** The blob entry of the secret at `path`: ERR_SECRET_NOT_FOUND if absent, ERR_IS_A_DIRECTORY for a tree. */
  private async secretEntry(normalized: string, version?: string): Promise<TreeEntry> {
    const entry = await this.entryAt(normalized, version);
    if (!entry) {
      const at = version ? ` at ${version}` : '';
      throw new KeynodeError('ERR_SECRET_NOT_FOUND', `no secret ${this.vaultName}:${normalized}${at}`, { vault: this.vaultName, path: normalized });
    }
    if (entry.type === 'tree') {
      throw new KeynodeError('ERR_IS_A_DIRECTORY', `${this.vaultName}:${normalized} is a directory`, { vault: this.vaultName, path: normalized });
    }
    return entry;
  }

  /** The exact bytes of the secret at `path`, at HEAD or at `version` (a commit id or prefix, HEAD, HEAD~N). */
  async readSecret(path: string, options: { version?: string } = {}): Promise<Buffer> {
    const normalized = normalizeSecretPath(path);
    try {
      const entry = await this.secretEntry(normalized, options.version);
      try {
        return this.readBlob(entry.oid);
      } catch (error) {
        if (!(error instanceof LargeObjectError)) throw error;
        // Whole up to SECRET_VALUE_MAX_BYTES; past it a clear refusal, never a gigabyte buffer.
        return await readLargeValueWhole({
          store: this.store,
          keyspace: this.keyspace,
          oid: entry.oid,
          manifest: error.manifest,
          what: `${this.vaultName}:${normalized}`,
        });
      }
    } catch (error) {
      throw this.integrity(error, normalized);
    }
  }

  /**
   * The bytes of the secret at `path` (at HEAD or `version`) in pieces, in bounded memory
   * whatever the size: a small value in one piece, a large one chunk (1 MiB) by chunk, each
   * verified before it is handed out. Errors are readSecret's, thrown when iterated.
   */
  async *readSecretStream(path: string, options: { version?: string } = {}): AsyncGenerator<Buffer, void, undefined> {
    const normalized = normalizeSecretPath(path);
    let oid: string;
    try {
      const entry = await this.secretEntry(normalized, options.version);
      oid = entry.oid;
    } catch (error) {
      throw this.integrity(error, normalized);
    }
    try {
      yield* this.objects.readBlobStream(oid);
    } catch (error) {
      throw this.integrity(error, normalized);
    }
  }

  async exists(path: string): Promise<boolean> {
    return (await this.typeOf(path)) !== null;
  }

  /** 'secret', 'dir' or null, at HEAD ('' is the vault root, a directory). */
  async typeOf(path: string): Promise<'secret' | 'dir' | null> {
    const entry = await this.entryAt(normalizeSecretPath(path, { allowRoot: true }));
    return entry === null ? null : entry.type === 'tree' ? 'dir' : 'secret';
  }

  /** Secrets and directories under `dir` ('' is the whole vault), recursively unless told otherwise. */
  async list(dir = '', options: { version?: string; recursive?: boolean } = {}): Promise<SecretEntry[]> {
    const result: SecretEntry[] = [];
    for await (const page of this.listPages(dir, options)) for (const entry of page) result.push(entry);
    return result;
  }

  /** `list` one entry at a time: a listing of any size in bounded memory; the caller may stop. */
  async *listEntries(dir = '', options: { version?: string; recursive?: boolean } = {}): AsyncGenerator<SecretEntry, void, undefined> {
    for await (const page of this.listPages(dir, options)) yield* page;
  }

  /**
   * `list` in pages (in order: depth first, by name), holding the trees on the path being walked
   * and one page, never the listing. The version is resolved once: a write meanwhile does not
   * change what is listed. What the agent streams (api/handlers.ts).
   */
  async *listPages(dir = '', options: { version?: string; recursive?: boolean } = {}): AsyncGenerator<SecretEntry[], void, undefined> {
    const normalized = normalizeSecretPath(dir, { allowRoot: true });
    try {
      const entry = await this.entryAt(normalized, options.version);
      if (!entry)
        throw new KeynodeError('ERR_SECRET_NOT_FOUND', `no secret or directory ${this.vaultName}:${normalized}`, { vault: this.vaultName, path: normalized });
      if (entry.type === 'blob') {
        yield [{ path: normalized, type: 'secret' }];
        return;
      }
      if (options.recursive === false) {
        const tree = await this.trees.get(entry.oid);
        yield [...tree.keys()].sort().map((name) => ({ path: joinPath(normalized, name), type: tree.get(name)!.type === 'tree' ? 'dir' : 'secret' }));
        return;
      }
      for await (const page of walkTreePages(this.trees, entry.oid, normalized)) {
        yield page.map(({ path, entry: child }): SecretEntry => ({ path, type: child.type === 'tree' ? 'dir' : 'secret' }));
      }
    } catch (error) {
      throw this.integrity(error, normalized);
    }
  }

  async stat(path: string): Promise<SecretStat> {
    const normalized = normalizeSecretPath(path, { allowRoot: true });
    try {
      const entry = await this.entryAt(normalized);
      if (!entry) throw new KeynodeError('ERR_SECRET_NOT_FOUND', `no secret ${this.vaultName}:${normalized}`, { vault: this.vaultName, path: normalized });
      const size = entry.type === 'blob' ? this.objects.blobSize(entry.oid) : (await this.trees.get(entry.oid)).size;
      const [modified] = await this.log({ path: normalized, limit: 1 });
      return { path: normalized, type: entry.type === 'tree' ? 'dir' : 'secret', size, modified: modified ?? null };
    } catch (error) {
      throw this.integrity(error, normalized);
    }
  }

  // --- history -------------------------------------------------------------------------

  /**
   * Run a history query with the index complete for HEAD: built on first use for a vault
   * that has none (or an older one), and rebuilt from the objects if the query finds it
   * disagreeing with them.
   */
  private async withHistory<T>(query: (head: string) => Promise<T>): Promise<T> {
    try {
      if (this.indexedHead === null) this.indexedHead = this.index.indexedHead();
      if (this.indexedHead !== this.head) await this.exclusive(() => this.buildIndex(false));
      try {
        return await query(this.head);
      } catch (error) {
        if (!(error instanceof IndexInconsistent)) throw error;
      }
      await this.exclusive(() => this.buildIndex(true));
      try {
        return await query(this.head);
      } catch (error) {
        if (error instanceof IndexInconsistent) throw indexError(this.vaultName);
        throw error;
      }
    } catch (error) {
      throw this.integrity(error);
    }
  }

  /** Index the commits the index lacks (all of them when `rebuild`), in batches of their own. */
  private async buildIndex(rebuild: boolean): Promise<void> {
    const indexed = rebuild ? null : this.index.indexedHead();
    if (indexed === this.head) {
      this.indexedHead = indexed;
      return;
    }
    // Without a valid index head, records found may be from an interrupted build: redo all.
    const full = rebuild || indexed === null || this.index.record(indexed) === null;
    try {
      await this.history.indexFrom(this.head, { rebuild: full, flush: (ops) => this.store.write(ops) });
    } catch (error) {
      this.index.discardPending();
      throw error;
    }
    this.indexedHead = this.head;
  }

  /** Commits newest first (commit time, then generation), each once, through all parents; optionally only those that changed `path`. */
  async log(options: { path?: string; limit?: number } = {}): Promise<CommitInfo[]> {
    const path = options.path === undefined ? undefined : normalizeSecretPath(options.path, { allowRoot: true });
    return this.withHistory(async (head) => (await this.history.walk(head, { path, limit: options.limit })).map(({ oid, commit }) => commitInfo(oid, commit)));
  }

  /** `log` one commit at a time; the caller may stop. */
  async *logEntries(options: { path?: string; limit?: number } = {}): AsyncGenerator<CommitInfo, void, undefined> {
    for await (const page of this.logPages(options)) yield* page;
  }

  /**
   * `log` in pages of up to `pageCommits` (streamed to its reader; the caller may stop): the
   * commits of HEAD as it is when the walk starts. An index found inconsistent is rebuilt once
   * and the walk goes on past the commits already given.
   */
  async *logPages(options: { path?: string; limit?: number; pageCommits?: number } = {}): AsyncGenerator<CommitInfo[], void, undefined> {
    const path = options.path === undefined ? undefined : normalizeSecretPath(options.path, { allowRoot: true });
    const pageCommits = options.pageCommits ?? 500;
    const head = await this.withHistory(async (current) => current);
    let given = 0;
    for (let attempt = 0; ; attempt++) {
      let page: CommitInfo[] = [];
      let pageStarted = 0;
      try {
        let skip = given;
        for await (const { oid, commit } of this.history.commits(head, { path, limit: options.limit })) {
          if (skip > 0) {
            skip--;
            continue;
          }
          if (page.length === 0) pageStarted = performance.now();
          page.push(commitInfo(oid, commit));
          // The first page small and any page once it waited 20 ms (a --path walk finds commits slowly): output starts at once.
          if (page.length >= (given === 0 ? 20 : pageCommits) || performance.now() - pageStarted > 20) {
            given += page.length;
            yield page;
            page = [];
          }
        }
        if (page.length > 0) yield page;
        return;
      } catch (error) {
        if (!(error instanceof IndexInconsistent)) throw this.integrity(error);
        if (attempt > 0) throw indexError(this.vaultName);
        await this.exclusive(() => this.buildIndex(true));
      }
    }
  }

  /**
   * Resolve HEAD, a full commit id or an unambiguous prefix of at least 4 hex digits, with
   * optional suffixes ~N (N first parents back) and ^N (the N-th parent).
   */
  async resolveCommit(ref: string): Promise<string> {
    return this.withHistory(async (head) => this.history.resolve(ref, head));
  }

  /** What changed between two versions; secret values only when asked for. Costs the changed paths. */
  async diff(from: string, to: string, options: { values?: boolean } = {}): Promise<DiffEntry[]> {
    try {
      const [fromTree, toTree] = [await this.treeOf(from), await this.treeOf(to)];
      const result = await this.history.diffTrees(fromTree, toTree);
      if (options.values) {
        // A large value is never read whole here: its size stands in for it (beforeSize/afterSize).
        const valueOf = (oid: string): { value?: Buffer; size?: number } => {
          try {
            return { value: this.readBlob(oid) };
          } catch (error) {
            if (!(error instanceof LargeObjectError)) throw error;
            return { size: this.objects.blobSize(oid) };
          }
        };
        for (const entry of result) {
          if (entry.status !== 'added') {
            const { value, size } = valueOf((await this.trees.lookup(fromTree, entry.path))!.oid);
            if (value) entry.before = value;
            else entry.beforeSize = size;
          }
          if (entry.status !== 'removed') {
            const { value, size } = valueOf((await this.trees.lookup(toTree, entry.path))!.oid);
            if (value) entry.after = value;
            else entry.afterSize = size;
          }
        }
      }
      return result;
    } catch (error) {
      throw this.integrity(error);
    }
  }

  // --- writing -------------------------------------------------------------------------

  /** The store's one write queue (shared with every vault and the registry). */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.store.exclusive(work);
  }

  private writeCommitObject(tree: string, parents: string[], message: string): string {
    return this.objects.writeCommit({ tree, parents, author: { ...this.author, timestamp: Math.floor(Date.now() / 1000) }, message });
  }

  /**
   * Stage the history index records for a new commit on top of HEAD: what the paths in
   * `touched` (and under them) changed decides its path records. The index must be current.
   */
  private async stageIndexFor(commit: string, tree: string, touched: readonly string[]): Promise<BatchOp[]> {
    const changed = await changedPaths(this.trees, this.rootTree, tree, touched, WIDE_CHANGE_PATHS);
    this.index.addCommit(commit, { parents: [this.head], time: this.objects.readCommit(commit).committer.timestamp }, changed);
    this.index.setIndexedHead(commit);
    return this.index.takePending();
  }

  /**
   * Make one commit from a root tree produced by `build`, and land it durably with the new
   * head and its history index records. `build` adds the paths it edited to `touched`.
   */
  private commitTree(message: string, build: (touched: string[]) => Promise<string>): Promise<WriteResult> {
    return this.exclusive(async () => {
      try {
        if (this.indexedHead === null) this.indexedHead = this.index.indexedHead();
        if (this.indexedHead !== this.head) await this.buildIndex(false);
        const touched: string[] = [];
        const tree = await build(touched);
        if (tree === this.rootTree) {
          this.objects.discardPending();
          return { commit: this.head, changed: false };
        }
        // The head on disk must be the one this commit builds on; anything else would orphan a
        // commit (a lost update). One Vault instance per vault makes this impossible; check anyway.
        const stored = this.store.get(this.keyspace, HEAD_RECORD)?.toString('ascii');
        if (stored !== this.head) {
          throw new KeynodeError('ERR_INTERNAL', `vault "${this.vaultName}" changed underneath this writer; the change was not made`, {
            vault: this.vaultName,
          });
        }
        const commit = this.writeCommitObject(tree, [this.head], message);
        const indexOps = await this.stageIndexFor(commit, tree, touched);
        this.store.write([...this.objects.takePending(), ...indexOps, { keyspace: this.keyspace, name: HEAD_RECORD, value: Buffer.from(commit, 'ascii') }]);
        this.head = commit;
        this.indexedHead = commit;
        this.rootTree = tree;
        return { commit, changed: true };
      } catch (error) {
        this.objects.discardPending();
        this.index.discardPending();
        throw this.integrity(error);
      }
    });
  }

  /** Build an edited directory's tree and stage its record (a delta when it pays: treeStore.ts). */
  private writeTreeObject = (edit: DirectoryEdit): WrittenTree =>
    writeStoredTree({
      edit,
      hasRecord: (oid) => this.objects.has(oid),
      readRecord: this.readTreeRecord,
      putRecord: (oid, record) => this.objects.putObject(oid, record),
      knownRecord: (oid) => this.trees.recordInfo(oid),
    });

  /** Apply edits to a draft of the tree (inside a commit). */
  private async applyToDraft(draft: TreeDraft, edits: readonly Edit[], touched: string[]): Promise<void> {
    for (const edit of edits) {
      const path = normalizeSecretPath(edit.path);
      touched.push(path);
      const existing = await draft.lookup(path);
      if ('value' in edit) {
        if (existing?.type === 'tree') {
          throw new KeynodeError('ERR_IS_A_DIRECTORY', `${this.vaultName}:${path} is a directory`, { vault: this.vaultName, path });
        }
        const encoded = encodeBlob(edit.value);
        this.objects.putObject(encoded.oid, encoded.wrapped);
        const oid = encoded.oid;
        await draft.set(path, { mode: BLOB_MODE, type: 'blob', oid });
      } else if ('delete' in edit) {
        if (!existing) throw new KeynodeError('ERR_SECRET_NOT_FOUND', `no secret ${this.vaultName}:${path}`, { vault: this.vaultName, path });
        await draft.set(path, null);
      } else if ('mkdir' in edit) {
        if (existing?.type === 'blob') throw new KeynodeError('ERR_PATH_EXISTS', `${this.vaultName}:${path} is a secret`, { vault: this.vaultName, path });
        await draft.makeDir(path);
      } else {
        await draft.set(path, edit.entry);
      }
    }
  }

  /** Apply several edits as one commit. */
  async applyEdits(edits: readonly Edit[], message: string): Promise<WriteResult> {
    return this.commitTree(message, async (touched) => {
      const draft = new TreeDraft(this.trees, this.rootTree);
      await this.applyToDraft(draft, edits, touched);
      return draft.write(this.writeTreeObject);
    });
  }

  /** Store `value` at `path` as a new commit. */
  async writeSecret(path: string, value: Uint8Array, options: { message?: string } = {}): Promise<WriteResult> {
    const normalized = normalizeSecretPath(path);
    // A large value is kept in chunks (readable as a stream later), whichever call wrote it.
    if (value.length > LARGE_BLOB_THRESHOLD_BYTES) return this.writeSecretStream(normalized, [value], { size: value.length, message: options.message });
    return this.applyEdits([{ path: normalized, value }], options.message ?? `set ${normalized}`);
  }

  /**
   * Store the bytes of `source` (a Readable, a generator…) at `path` as a new commit, in bounded
   * memory whatever the size. A value over LARGE_BLOB_THRESHOLD_BYTES is staged as chunk records
   * first, outside the store's write queue (other writers go on meanwhile); the commit then lands
   * its manifest with the trees and head in one batch. `size`, when known, lets the git id be
   * hashed as the value streams by; a source of another length is refused, nothing stored.
   */
  async writeSecretStream(path: string, source: ValueSource, options: { size?: number; message?: string } = {}): Promise<WriteResult> {
    const normalized = normalizeSecretPath(path);
    const message = options.message ?? `set ${normalized}`;
    const staged = await stageValue({ store: this.store, keyspace: this.keyspace, source, size: options.size });
    if (staged.kind === 'small') return this.applyEdits([{ path: normalized, value: staged.value }], message);
    try {
      return await this.commitTree(message, async (touched) => {
        const draft = new TreeDraft(this.trees, this.rootTree);
        if ((await draft.lookup(normalized))?.type === 'tree') {
          throw new KeynodeError('ERR_IS_A_DIRECTORY', `${this.vaultName}:${normalized} is a directory`, { vault: this.vaultName, path: normalized });
        }
        touched.push(normalized);
        const manifest = staged.commitOps[0];
        if (manifest && 'value' in manifest && manifest.value) this.objects.putObject(staged.oid, manifest.value);
        await draft.set(normalized, { mode: BLOB_MODE, type: 'blob', oid: staged.oid });
        return draft.write(this.writeTreeObject);
      });
    } finally {
      this.discardUnusedChunks(staged);
    }
  }

  /**
   * Delete staged chunks whose manifest did not land (the commit failed, or the same value
   * landed meanwhile under another manifest); best effort: a crash leaves them as orphans.
   */
  private discardUnusedChunks(staged: { oid: string; commitOps: readonly BatchOp[]; chunkNames: () => Iterable<string> }): void {
    const manifest = staged.commitOps[0];
    if (!manifest || !('value' in manifest) || !manifest.value) return;
    try {
      const stored = this.store.get(this.keyspace, objectRecordName(staged.oid));
      if (stored !== undefined && Buffer.compare(stored, manifest.value) === 0) return;
      this.store.write([...staged.chunkNames()].map((name) => ({ keyspace: this.keyspace, name, delete: true as const })));
    } catch {
      /* orphans cost space only; keynode check reports them */
    }
  }

  /** Store many secrets in one commit (imports, bulk loads). */
  async writeSecrets(entries: ReadonlyArray<{ path: string; value: Uint8Array }>, options: { message?: string } = {}): Promise<WriteResult> {
    return this.applyEdits(entries, options.message ?? `set ${entries.length} secrets`);
  }

  async remove(path: string, options: { recursive?: boolean; message?: string } = {}): Promise<WriteResult> {
    const normalized = normalizeSecretPath(path);
    return this.commitTree(options.message ?? `remove ${normalized}`, async (touched) => {
      const draft = new TreeDraft(this.trees, this.rootTree);
      const entry = await draft.lookup(normalized);
      if (entry?.type === 'tree' && !options.recursive) {
        throw new KeynodeError('ERR_IS_A_DIRECTORY', `${this.vaultName}:${normalized} is a directory (use -r)`, { vault: this.vaultName, path: normalized });
      }
      await this.applyToDraft(draft, [{ path: normalized, delete: true }], touched);
      return draft.write(this.writeTreeObject);
    });
  }

  async makeDir(path: string, options: { message?: string } = {}): Promise<WriteResult> {
    const normalized = normalizeSecretPath(path);
    return this.applyEdits([{ path: normalized, mkdir: true }], options.message ?? `mkdir ${normalized}`);
  }

  /**
   * Move or copy within one commit. The destination is `to`, or inside `to` when it is an
   * existing directory (like mv/cp); an existing secret there is replaced only with `overwrite`.
   */
  private transfer(kind: 'move' | 'copy', from: string, to: string, options: { overwrite?: boolean; message?: string }): Promise<WriteResult> {
    const [source, dest] = [normalizeSecretPath(from), normalizeSecretPath(to, { allowRoot: true })];
    return this.commitTree(options.message ?? `${kind} ${source} to ${dest || '/'}`, async (touched) => {
      const draft = new TreeDraft(this.trees, this.rootTree);
      const entry = await draft.lookup(source);
      if (!entry) throw new KeynodeError('ERR_SECRET_NOT_FOUND', `no secret ${this.vaultName}:${source}`, { vault: this.vaultName, path: source });
      const existing = await draft.lookup(dest);
      const target = existing?.type === 'tree' ? joinPath(dest, baseName(source)) : dest;
      if (target === source || target.startsWith(source + '/')) {
        throw new KeynodeError('ERR_INVALID_PATH', `cannot ${kind} ${source} into itself`, { path: source });
      }
      const atTarget = target === dest ? existing : await draft.lookup(target);
      if (atTarget && (!options.overwrite || atTarget.type === 'tree')) {
        throw new KeynodeError('ERR_PATH_EXISTS', `${this.vaultName}:${target} already exists`, { vault: this.vaultName, path: target });
      }
      touched.push(source, target);
      if (kind === 'move') await draft.set(source, null);
      await draft.set(target, entry);
      return draft.write(this.writeTreeObject);
    });
  }

  async move(from: string, to: string, options: { overwrite?: boolean; message?: string } = {}): Promise<WriteResult> {
    return this.transfer('move', from, to, options);
  }

  async copy(from: string, to: string, options: { overwrite?: boolean; message?: string } = {}): Promise<WriteResult> {
    return this.transfer('copy', from, to, options);
  }

  /** Restore the tree of `version` as a new commit; history is never rewritten. */
  async revert(version: string, options: { message?: string } = {}): Promise<WriteResult> {
    const commit = await this.resolveCommit(version);
    const tree = this.objects.readCommit(commit).tree;
    return this.commitTree(options.message ?? `revert to ${commit.slice(0, 12)}`, async (touched) => {
      touched.push('');
      return tree;
    });
  }

  /**
   * Land commits made elsewhere (sync will; tests build merges with it): stage `objects` (each
   * checked to hash to its id), index every new commit and move HEAD to `head`, all in one
   * batch. `head` must descend from the current HEAD (history is never rewritten).
   */
  async landCommits(options: { objects: ReadonlyArray<{ oid: string; wrapped: Uint8Array }>; head: string }): Promise<void> {
    const { objects, head } = options;
    await this.withHistory(async () => undefined); // the index is current for HEAD before staging on top
    return this.exclusive(async () => {
      try {
        for (const object of objects) {
          if (createHash('sha1').update(object.wrapped).digest('hex') !== object.oid) {
            throw new KeynodeError('ERR_INTEGRITY', `an object landed in vault "${this.vaultName}" does not hash to its id`, { vault: this.vaultName });
          }
          this.objects.putObject(object.oid, object.wrapped);
        }
        if (head === this.head) return void this.objects.discardPending();
        const indexOps: BatchOp[] = [];
        await this.history.indexFrom(head, { rebuild: false, flush: (ops) => indexOps.push(...ops), chunk: Infinity });
        if (!this.history.descendsFrom(head, this.head)) {
          throw new KeynodeError('ERR_INVALID_ARGUMENT', `commit ${head.slice(0, 12)} does not descend from HEAD of vault "${this.vaultName}"`, {
            vault: this.vaultName,
          });
        }
        const tree = this.objects.readCommit(head).tree;
        this.store.write([...this.objects.takePending(), ...indexOps, { keyspace: this.keyspace, name: HEAD_RECORD, value: Buffer.from(head, 'ascii') }]);
        this.head = head;
        this.indexedHead = head;
        this.rootTree = tree;
      } catch (error) {
        this.objects.discardPending();
        this.index.discardPending();
        throw this.integrity(error);
      }
    });
  }

  // --- whole-vault operations ----------------------------------------------------------

  /** Every object reachable from HEAD through all parents (commits, trees, blobs). */
  async reachableObjects(): Promise<string[]> {
    try {
      return (await this.history.reachableObjects(this.head)).objects;
    } catch (error) {
      throw this.integrity(error);
    }
  }

  /** The store ops that delete this vault's records (used by VaultManager.deleteVault). */
  async deletionOps(): Promise<Array<{ keyspace: Keyspace; name: string; delete: true }>> {
    let reachable: { objects: string[]; commits: string[] };
    try {
      reachable = await this.history.reachableObjects(this.head);
    } catch (error) {
      throw this.integrity(error);
    }
    const names = new Set(reachable.objects.map((oid) => `obj/${oid}`));
    // A large value's chunks too, or a deleted vault's chunks would stay on disk for ever.
    for (const name of largeBlobChunkRecords(this.store, this.keyspace, reachable.objects)) names.add(name);
    for (const commit of reachable.commits) {
      let record = null;
      try {
        record = this.index.record(commit);
      } catch (error) {
        if (!(error instanceof IndexInconsistent)) throw error; // a malformed record is still deleted
      }
      for (const name of [...commitIndexRecordNames(commit, record), commitRecordName(commit)]) {
        if (!names.has(name) && this.store.has(this.keyspace, name)) names.add(name);
      }
    }
    if (this.store.has(this.keyspace, INDEX_META_RECORD)) names.add(INDEX_META_RECORD);
    return [...names, HEAD_RECORD].map((name) => ({
      keyspace: this.keyspace,
      name,
      delete: true as const,
    }));
  }

  /** Write the whole history as a git bundle (v2) that `git clone` reads. Plaintext: the caller confirms. */
  async exportBundle(file: string): Promise<{ commit: string; objects: number; bytes: number }> {
    const oids = await this.reachableObjects();
    assertBundleExportable(this.store, this.keyspace, oids, this.vaultName);
    const { packfile } = await git.packObjects({ fs: new EncryptedGitFs(this.store, this.keyspace), gitdir: GITDIR, oids });
    if (!packfile) throw new KeynodeError('ERR_INTERNAL', 'git produced no pack');
    const header = Buffer.from(`# v2 git bundle\n${this.head} HEAD\n${this.head} refs/heads/main\n\n`, 'ascii');
    const bundle = Buffer.concat([header, packfile]);
    writeFileAtomic(file, bundle);
    return { commit: this.head, objects: oids.length, bytes: bundle.length };
  }
}
