import { createHash } from 'node:crypto';
import git from 'isomorphic-git';
import { KeynodeError, isKeynodeError } from '../errors.js';
import { COMMIT_PREFIX_MIN_CHARS } from '../constants.js';
import type { LogStore } from '../storage/LogStore.js';
import type { Keyspace } from '../storage/Keyspace.js';
import { writeFileAtomic } from '../storage/files.js';
import { EncryptedGitFs, GITDIR } from './EncryptedGitFs.js';
import { encodeBlob, encodeCommit, encodeTree, parseTreeContent } from './gitObjects.js';
import { baseName, joinPath, normalizeSecretPath } from './paths.js';
import { BLOB_MODE, TREE_MODE, TreeCache, TreeDraft, walkTree, type Tree, type TreeEntry } from './trees.js';

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

export interface DiffEntry {
  path: string;
  status: 'added' | 'removed' | 'modified';
  before?: Buffer;
  after?: Buffer;
}

export type Edit = { path: string; value: Uint8Array } | { path: string; delete: true } | { path: string; entry: TreeEntry } | { path: string; mkdir: true };

/** The record holding a vault's current commit id. */
export const HEAD_RECORD = 'head';
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

function commitInfo(oid: string, commit: git.CommitObject): CommitInfo {
  return {
    commit: oid,
    message: commit.message.replace(/\n$/, ''),
    author: commit.author.name,
    time: new Date(commit.author.timestamp * 1000).toISOString(),
    parents: commit.parent,
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
  private readonly gitFs: EncryptedGitFs;
  private readonly trees: TreeCache;
  private readonly commits = new Map<string, git.CommitObject>();
  private head: string;
  private rootTree: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private vaultName: string,
    private readonly store: LogStore,
    private readonly keyspace: Keyspace,
    private readonly author: Author,
    head: { commit: string; tree: string },
  ) {
    this.gitFs = new EncryptedGitFs(store, keyspace);
    this.trees = new TreeCache((oid) => this.loadTree(oid));
    this.head = head.commit;
    this.rootTree = head.tree;
  }

  /** Open an existing vault from its head record. */
  static async open(name: string, store: LogStore, keyspace: Keyspace, author: Author): Promise<Vault> {
    const head = store.get(keyspace, HEAD_RECORD)?.toString('ascii');
    if (!head) throw new KeynodeError('ERR_INTEGRITY', `vault "${name}" has no head record`, { vault: name });
    const vault = new Vault(name, store, keyspace, author, { commit: head, tree: EMPTY_TREE });
    vault.rootTree = (await vault.readCommit(head)).tree;
    return vault;
  }

  /** Build a new vault's first commit; the caller writes the returned ops in its own batch. */
  static async initialize(name: string, store: LogStore, keyspace: Keyspace, author: Author, message: string) {
    const vault = new Vault(name, store, keyspace, author, { commit: '', tree: EMPTY_TREE });
    const tree = vault.writeTreeObject(new Map());
    const commit = vault.writeCommitObject(tree, [], message);
    const ops = [...vault.gitFs.takePending(), { keyspace, name: HEAD_RECORD, value: Buffer.from(commit, 'ascii') }];
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

  /** Raw object bytes; a missing object that a tree or commit refers to is damage. */
  private readRawObject(oid: string): { type: string; content: Buffer } {
    const stored = this.gitFs.readObject(`obj/${oid}`);
    if (!stored) throw new KeynodeError('ERR_INTEGRITY', `object missing from vault "${this.vaultName}"`);
    const wrapped = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
    if (createHash('sha1').update(wrapped).digest('hex') !== oid) {
      throw new KeynodeError('ERR_INTEGRITY', `object damaged in vault "${this.vaultName}"`);
    }
    const space = wrapped.indexOf(0x20);
    const nul = wrapped.indexOf(0);
    return { type: wrapped.subarray(0, space).toString('ascii'), content: wrapped.subarray(nul + 1) };
  }

  private async loadTree(oid: string): Promise<Tree> {
    if (oid === EMPTY_TREE) return new Map();
    const { type, content } = this.readRawObject(oid); // SHA-1 verified
    const tree = type === 'tree' ? parseTreeContent(content) : null;
    if (!tree) throw new KeynodeError('ERR_INTEGRITY', `object damaged in vault "${this.vaultName}"`);
    return tree;
  }

  private async readCommit(oid: string): Promise<git.CommitObject> {
    const cached = this.commits.get(oid);
    if (cached) return cached;
    this.readRawObject(oid);
    const { commit } = await git.readCommit({ fs: this.gitFs, gitdir: GITDIR, oid });
    if (this.commits.size > 10_000) this.commits.clear();
    this.commits.set(oid, commit);
    return commit;
  }

  private readBlob(oid: string): Buffer {
    const { type, content } = this.readRawObject(oid);
    if (type !== 'blob') throw new KeynodeError('ERR_INTEGRITY', `object damaged in vault "${this.vaultName}"`);
    return content;
  }

  /** The root tree of a version ('HEAD' when omitted). */
  private async treeOf(version?: string): Promise<string> {
    if (version === undefined) return this.rootTree;
    return (await this.readCommit(await this.resolveCommit(version))).tree;
  }

  private async entryAt(path: string, version?: string): Promise<TreeEntry | null> {
    return this.trees.lookup(await this.treeOf(version), path);
  }

  /** The exact bytes of the secret at `path`, at HEAD or at `version` (a commit id or prefix, HEAD, HEAD~N). */
  async readSecret(path: string, options: { version?: string } = {}): Promise<Buffer> {
    const normalized = normalizeSecretPath(path);
    try {
      const entry = await this.entryAt(normalized, options.version);
      if (!entry) {
        const at = options.version ? ` at ${options.version}` : '';
        throw new KeynodeError('ERR_SECRET_NOT_FOUND', `no secret ${this.vaultName}:${normalized}${at}`, { vault: this.vaultName, path: normalized });
      }
      if (entry.type === 'tree') {
        throw new KeynodeError('ERR_IS_A_DIRECTORY', `${this.vaultName}:${normalized} is a directory`, { vault: this.vaultName, path: normalized });
      }
      return this.readBlob(entry.oid);
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
    const normalized = normalizeSecretPath(dir, { allowRoot: true });
    try {
      const entry = await this.entryAt(normalized, options.version);
      if (!entry) throw new KeynodeError('ERR_SECRET_NOT_FOUND', `no secret or directory ${this.vaultName}:${normalized}`, { vault: this.vaultName, path: normalized });
      if (entry.type === 'blob') return [{ path: normalized, type: 'secret' }];
      const result: SecretEntry[] = [];
      if (options.recursive === false) {
        const tree = await this.trees.get(entry.oid);
        for (const name of [...tree.keys()].sort()) result.push({ path: joinPath(normalized, name), type: tree.get(name)!.type === 'tree' ? 'dir' : 'secret' });
        return result;
      }
      await walkTree(this.trees, entry.oid, normalized, (path, child) => result.push({ path, type: child.type === 'tree' ? 'dir' : 'secret' }));
      return result;
    } catch (error) {
      throw this.integrity(error, normalized);
    }
  }

  async stat(path: string): Promise<SecretStat> {
    const normalized = normalizeSecretPath(path, { allowRoot: true });
    try {
      const entry = await this.entryAt(normalized);
      if (!entry) throw new KeynodeError('ERR_SECRET_NOT_FOUND', `no secret ${this.vaultName}:${normalized}`, { vault: this.vaultName, path: normalized });
      const size = entry.type === 'blob' ? this.readBlob(entry.oid).length : (await this.trees.get(entry.oid)).size;
      const [modified] = await this.log({ path: normalized, limit: 1 });
      return { path: normalized, type: entry.type === 'tree' ? 'dir' : 'secret', size, modified: modified ?? null };
    } catch (error) {
      throw this.integrity(error, normalized);
    }
  }

  // --- history -------------------------------------------------------------------------

  /** Commits newest first, optionally only those that changed `path`. */
  async log(options: { path?: string; limit?: number } = {}): Promise<CommitInfo[]> {
    const path = options.path === undefined ? undefined : normalizeSecretPath(options.path, { allowRoot: true });
    const limit = options.limit ?? Infinity;
    const result: CommitInfo[] = [];
    try {
      let oid: string | undefined = this.head;
      while (oid && result.length < limit) {
        const commit = await this.readCommit(oid);
        const parent = commit.parent[0];
        let include = true;
        if (path !== undefined && path !== '') {
          const here = await this.trees.lookup(commit.tree, path);
          const before = parent ? await this.trees.lookup((await this.readCommit(parent)).tree, path) : null;
          include = (here?.oid ?? null) !== (before?.oid ?? null);
        }
        if (include) result.push(commitInfo(oid, commit));
        oid = parent;
      }
      return result;
    } catch (error) {
      throw this.integrity(error);
    }
  }

  /** Resolve HEAD, HEAD~N, a full commit id or an unambiguous prefix of at least 4 hex digits. */
  async resolveCommit(ref: string): Promise<string> {
    const notFound = () => new KeynodeError('ERR_COMMIT_NOT_FOUND', `no commit "${ref}" in vault "${this.vaultName}"`, { vault: this.vaultName, ref });
    const back = /^HEAD(?:~(\d+))?$/.exec(ref);
    if (back) {
      let oid = this.head;
      for (let steps = Number(back[1] ?? 0); steps > 0; steps--) {
        const parent = (await this.readCommit(oid)).parent[0];
        if (!parent) throw notFound();
        oid = parent;
      }
      return oid;
    }
    const prefix = ref.toLowerCase();
    if (!/^[0-9a-f]+$/.test(prefix) || prefix.length < COMMIT_PREFIX_MIN_CHARS || prefix.length > 40) throw notFound();
    const matches: string[] = [];
    for (let oid: string | undefined = this.head; oid; oid = (await this.readCommit(oid)).parent[0]) {
      if (oid.startsWith(prefix)) matches.push(oid);
      if (prefix.length === 40 && matches.length) break;
    }
    if (matches.length === 0) throw notFound();
    if (matches.length > 1) throw new KeynodeError('ERR_INVALID_ARGUMENT', `commit prefix "${ref}" is ambiguous`, { ref });
    return matches[0]!;
  }

  /** What changed between two versions; secret values only when asked for. */
  async diff(from: string, to: string, options: { values?: boolean } = {}): Promise<DiffEntry[]> {
    const result: DiffEntry[] = [];
    const addAll = async (entry: TreeEntry, path: string, status: 'added' | 'removed') => {
      if (entry.type === 'blob') result.push({ path, status });
      else await walkTree(this.trees, entry.oid, path, (child, e) => e.type === 'blob' && result.push({ path: child, status }));
    };
    const compare = async (a: TreeEntry | null, b: TreeEntry | null, path: string): Promise<void> => {
      if (a?.oid === b?.oid && a?.type === b?.type) return;
      if (a && b && a.type === 'tree' && b.type === 'tree') {
        const [left, right] = [await this.trees.get(a.oid), await this.trees.get(b.oid)];
        for (const name of [...new Set([...left.keys(), ...right.keys()])].sort()) {
          await compare(left.get(name) ?? null, right.get(name) ?? null, joinPath(path, name));
        }
        return;
      }
      if (a && b && a.type === 'blob' && b.type === 'blob') return void result.push({ path, status: 'modified' });
      if (a) await addAll(a, path, 'removed');
      if (b) await addAll(b, path, 'added');
    };
    try {
      const [fromTree, toTree] = [await this.treeOf(from), await this.treeOf(to)];
      await compare({ mode: TREE_MODE, type: 'tree', oid: fromTree }, { mode: TREE_MODE, type: 'tree', oid: toTree }, '');
      result.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
      if (options.values) {
        for (const entry of result) {
          if (entry.status !== 'added') entry.before = this.readBlob((await this.trees.lookup(fromTree, entry.path))!.oid);
          if (entry.status !== 'removed') entry.after = this.readBlob((await this.trees.lookup(toTree, entry.path))!.oid);
        }
      }
      return result;
    } catch (error) {
      throw this.integrity(error);
    }
  }

  // --- writing -------------------------------------------------------------------------

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private writeCommitObject(tree: string, parents: string[], message: string): string {
    const encoded = encodeCommit({ tree, parents, author: { ...this.author, timestamp: Math.floor(Date.now() / 1000) }, message });
    this.gitFs.putObject(encoded.oid, encoded.wrapped);
    return encoded.oid;
  }

  /** Make one commit from a root tree produced by `build`, and land it durably with the new head. */
  private commitTree(message: string, build: () => Promise<string>): Promise<WriteResult> {
    return this.exclusive(async () => {
      try {
        const tree = await build();
        if (tree === this.rootTree) {
          this.gitFs.discardPending();
          return { commit: this.head, changed: false };
        }
        // The head on disk must be the one this commit builds on; anything else would orphan a
        // commit (a lost update). One Vault instance per vault makes this impossible; check anyway.
        const stored = this.store.get(this.keyspace, HEAD_RECORD)?.toString('ascii');
        if (stored !== this.head) {
          throw new KeynodeError('ERR_INTERNAL', `vault "${this.vaultName}" changed underneath this writer; the change was not made`, { vault: this.vaultName });
        }
        const commit = this.writeCommitObject(tree, [this.head], message);
        this.store.write([...this.gitFs.takePending(), { keyspace: this.keyspace, name: HEAD_RECORD, value: Buffer.from(commit, 'ascii') }]);
        this.head = commit;
        this.rootTree = tree;
        return { commit, changed: true };
      } catch (error) {
        this.gitFs.discardPending();
        throw this.integrity(error);
      }
    });
  }

  private writeTreeObject = (entries: Tree): string => {
    const encoded = encodeTree(entries);
    this.gitFs.putObject(encoded.oid, encoded.wrapped);
    return encoded.oid;
  };

  /** Apply edits to a draft of the tree (inside a commit). */
  private async applyToDraft(draft: TreeDraft, edits: readonly Edit[]): Promise<void> {
    for (const edit of edits) {
      const path = normalizeSecretPath(edit.path);
      const existing = await draft.lookup(path);
      if ('value' in edit) {
        if (existing?.type === 'tree') {
          throw new KeynodeError('ERR_IS_A_DIRECTORY', `${this.vaultName}:${path} is a directory`, { vault: this.vaultName, path });
        }
        const encoded = encodeBlob(edit.value);
        this.gitFs.putObject(encoded.oid, encoded.wrapped);
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
    return this.commitTree(message, async () => {
      const draft = new TreeDraft(this.trees, this.rootTree);
      await this.applyToDraft(draft, edits);
      return draft.write(this.writeTreeObject);
    });
  }

  /** Store `value` at `path` as a new commit. */
  async writeSecret(path: string, value: Uint8Array, options: { message?: string } = {}): Promise<WriteResult> {
    const normalized = normalizeSecretPath(path);
    return this.applyEdits([{ path: normalized, value }], options.message ?? `set ${normalized}`);
  }

  /** Store many secrets in one commit (imports, bulk loads). */
  async writeSecrets(entries: ReadonlyArray<{ path: string; value: Uint8Array }>, options: { message?: string } = {}): Promise<WriteResult> {
    return this.applyEdits(entries, options.message ?? `set ${entries.length} secrets`);
  }

  async remove(path: string, options: { recursive?: boolean; message?: string } = {}): Promise<WriteResult> {
    const normalized = normalizeSecretPath(path);
    return this.commitTree(options.message ?? `remove ${normalized}`, async () => {
      const draft = new TreeDraft(this.trees, this.rootTree);
      const entry = await draft.lookup(normalized);
      if (entry?.type === 'tree' && !options.recursive) {
        throw new KeynodeError('ERR_IS_A_DIRECTORY', `${this.vaultName}:${normalized} is a directory (use -r)`, { vault: this.vaultName, path: normalized });
      }
      await this.applyToDraft(draft, [{ path: normalized, delete: true }]);
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
    return this.commitTree(options.message ?? `${kind} ${source} to ${dest || '/'}`, async () => {
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
    const tree = (await this.readCommit(commit)).tree;
    return this.commitTree(options.message ?? `revert to ${commit.slice(0, 12)}`, async () => tree);
  }

  // --- whole-vault operations ----------------------------------------------------------

  /** Every object reachable from HEAD (commits, trees, blobs). */
  async reachableObjects(): Promise<string[]> {
    const seen = new Set<string>();
    const visitTree = async (oid: string): Promise<void> => {
      if (seen.has(oid)) return;
      seen.add(oid);
      for (const entry of (await this.trees.get(oid)).values()) {
        if (entry.type === 'tree') await visitTree(entry.oid);
        else seen.add(entry.oid);
      }
    };
    try {
      for (let oid: string | undefined = this.head; oid && !seen.has(oid); ) {
        seen.add(oid);
        const commit = await this.readCommit(oid);
        await visitTree(commit.tree);
        oid = commit.parent[0];
      }
    } catch (error) {
      throw this.integrity(error);
    }
    return [...seen];
  }

  /** The store ops that delete this vault's records (used by VaultManager.deleteVault). */
  async deletionOps(): Promise<Array<{ keyspace: Keyspace; name: string; delete: true }>> {
    const names = (await this.reachableObjects()).map((oid) => `obj/${oid}`);
    return [...names, HEAD_RECORD].map((name) => ({
      keyspace: this.keyspace,
      name,
      delete: true as const,
    }));
  }

  /** Write the whole history as a git bundle (v2) that `git clone` reads. Plaintext: the caller confirms. */
  async exportBundle(file: string): Promise<{ commit: string; objects: number; bytes: number }> {
    const oids = await this.reachableObjects();
    const { packfile } = await git.packObjects({ fs: this.gitFs, gitdir: GITDIR, oids });
    if (!packfile) throw new KeynodeError('ERR_INTERNAL', 'git produced no pack');
    const header = Buffer.from(`# v2 git bundle\n${this.head} HEAD\n${this.head} refs/heads/main\n\n`, 'ascii');
    const bundle = Buffer.concat([header, packfile]);
    writeFileAtomic(file, bundle);
    return { commit: this.head, objects: oids.length, bytes: bundle.length };
  }
}
