import { KeynodeError } from '../errors.js';
import { COMMIT_PREFIX_MIN_CHARS } from '../constants.js';
import type { BatchOp } from '../storage/LogStore.js';
import {
  HistoryIndex,
  IndexInconsistent,
  PREFIX_BUCKET_HEX,
  WIDE_CHANGE_PATHS,
  headsLogPage,
  pathRecordName,
  prefixBucketName,
  type CommitRecord,
  type LogEntry,
} from './historyIndex.js';
import type { ObjectStore } from './objects.js';
import { joinPath, parentOf } from './paths.js';
import { CompactTree, TREE_MODE, type Tree, type TreeEntry } from './trees.js';

/**
 * History over a vault's commit graph: resolve, log, per-path changes, diff, reachability.
 * Every walk follows all parents. Queries go through the history index (historyIndex.ts) and
 * check what it says against the commit objects they read anyway; a disagreement throws
 * IndexInconsistent, and the vault rebuilds the index and asks again. Long walks read log pages
 * (one record per 256 commits) and skip commits by their recorded changed paths: those index
 * records are sealed under the vault key and checked for their own consistency, and every
 * commit a path query answers with is confirmed on its trees.
 */

/** What history needs of trees (the vault's TreeCache). */
export interface TreeReader {
  get(oid: string): Promise<Tree>;
  lookup(rootOid: string, path: string): Promise<TreeEntry | null>;
}

/** What a log shows of a commit (a ParsedCommit is one). */
export interface LogCommit {
  tree: string;
  parents: string[];
  author: { name: string; timestamp: number };
  message: string;
}

export interface DiffEntry {
  path: string;
  status: 'added' | 'removed' | 'modified';
  before?: Buffer;
  after?: Buffer;
  /** With values, for a large value (never read whole by a diff): its size in place of its bytes. */
  beforeSize?: number;
  afterSize?: number;
}

const EMPTY: Tree = new Map();

/** Work counters for tests: tree entries decoded while comparing directories. */
export const diffCounters = { entriesDecoded: 0 };

/** Git's tree order key: a directory sorts as if its name ended in '/'; bytes of UTF-8. */
function compareGitOrder(a: string, aTree: boolean, b: string, bTree: boolean): number {
  const [x, y] = [aTree ? `${a}/` : a, bTree ? `${b}/` : b];
  // UTF-16 order equals UTF-8 byte order below U+D800; above it, compare the bytes.
  if (/[\ud800-\uffff]/.test(x + y)) return Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8'));
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * The names whose entries differ between two directories, with the entry on each side (null
 * where absent): one merge pass over both in git's order, no lookups. A tree not in git's order
 * (no tree keynode reads is) falls back to lookups.
 */
export function differingEntries(left: Tree, right: Tree): Array<[string, TreeEntry | null, TreeEntry | null]> {
  if (left instanceof CompactTree && right instanceof CompactTree) return differingCanonical(left.wrapped(), right.wrapped()) ?? differingByLookup(left, right);
  const out: Array<[string, TreeEntry | null, TreeEntry | null]> = [];
  const [l, r] = [left[Symbol.iterator](), right[Symbol.iterator]()];
  let [a, b] = [l.next(), r.next()];
  let previous: [string, boolean] | null = null;
  const inOrder = (name: string, tree: boolean) => previous === null || compareGitOrder(previous[0], previous[1], name, tree) < 0;
  while (!a.done || !b.done) {
    diffCounters.entriesDecoded++;
    const order = a.done ? 1 : b.done ? -1 : compareGitOrder(a.value[0], a.value[1].type === 'tree', b.value[0], b.value[1].type === 'tree');
    const [name, entry] = order <= 0 ? a.value! : b.value!;
    if (!inOrder(name, entry.type === 'tree')) return differingByLookup(left, right);
    previous = [name, entry.type === 'tree'];
    if (order === 0) {
      if (!sameEntry(a.value![1], b.value![1])) out.push([name, a.value![1], b.value![1]]);
      [a, b] = [l.next(), r.next()];
    } else if (order < 0) {
      out.push([name, entry, null]);
      a = l.next();
    } else {
      out.push([name, null, entry]);
      b = r.next();
    }
  }
  return out;
}

/**
 * `differingEntries` over two canonical tree objects, entry by entry in step: an entry whose
 * bytes are the same on both sides is passed over without decoding it, so a one-entry change in
 * a directory of 100,000 costs a scan of its bytes, not 200,000 decoded entries. Null when the
 * bytes are not a well-formed tree in git's order.
 */
function differingCanonical(x: Buffer, y: Buffer): Array<[string, TreeEntry | null, TreeEntry | null]> | null {
  const out: Array<[string, TreeEntry | null, TreeEntry | null]> = [];
  const ends = (buffer: Buffer, at: number): { space: number; nul: number; end: number } | null => {
    const space = buffer.indexOf(0x20, at);
    const nul = space < 0 ? -1 : buffer.indexOf(0, space + 1);
    return space <= at || nul < 0 || nul + 21 > buffer.length ? null : { space, nul, end: nul + 21 };
  };
  const decode = (buffer: Buffer, at: number, place: { space: number; nul: number }): [string, TreeEntry] => {
    diffCounters.entriesDecoded++;
    const mode = buffer.toString('latin1', at, place.space);
    const tree = mode === '40000' || mode === TREE_MODE;
    // As trees.ts reads entries: modes zero-padded to six digits.
    const entry: TreeEntry = {
      mode: tree ? TREE_MODE : mode.padStart(6, '0'),
      type: tree ? 'tree' : 'blob',
      oid: buffer.toString('hex', place.nul + 1, place.nul + 21),
    };
    return [buffer.toString('utf8', place.space + 1, place.nul), entry];
  };
  let [i, j] = [x.indexOf(0) + 1, y.indexOf(0) + 1];
  if (i === 0 || j === 0) return null;
  let previous: [string, boolean] | null = null;
  while (i < x.length || j < y.length) {
    const a = i < x.length ? ends(x, i) : null;
    const b = j < y.length ? ends(y, j) : null;
    if ((i < x.length && !a) || (j < y.length && !b)) return null;
    if (a && b && a.end - i === b.end - j && x.subarray(i, a.end).equals(y.subarray(j, b.end))) {
      [i, j] = [a.end, b.end];
      continue;
    }
    const left = a ? decode(x, i, a) : null;
    const right = b ? decode(y, j, b) : null;
    const order = !left ? 1 : !right ? -1 : compareGitOrder(left[0], left[1].type === 'tree', right[0], right[1].type === 'tree');
    const [name, entry] = order <= 0 ? left! : right!;
    if (previous && compareGitOrder(previous[0], previous[1], name, entry.type === 'tree') >= 0) return null;
    previous = [name, entry.type === 'tree'];
    if (order === 0) {
      if (!sameEntry(left![1], right![1])) out.push([name, left![1], right![1]]);
      [i, j] = [a!.end, b!.end];
    } else if (order < 0) {
      out.push([name, left![1], null]);
      i = a!.end;
    } else {
      out.push([name, null, right![1]]);
      j = b!.end;
    }
  }
  return out;
}

function differingByLookup(left: Tree, right: Tree): Array<[string, TreeEntry | null, TreeEntry | null]> {
  const out: Array<[string, TreeEntry | null, TreeEntry | null]> = [];
  for (const [name, entry] of left) if (!sameEntry(entry, right.get(name) ?? null)) out.push([name, entry, right.get(name) ?? null]);
  for (const [name, entry] of right) if (!left.has(name)) out.push([name, null, entry]);
  return out;
}
const sameEntry = (a: TreeEntry | null, b: TreeEntry | null): boolean => (a?.oid ?? null) === (b?.oid ?? null) && (a?.type ?? null) === (b?.type ?? null);

/**
 * Paths (secrets and directories, never the root '') whose entry differs between two root
 * trees, looking only at and under `candidates` (the paths an edit touched; [''] for all).
 * Unchanged subtrees are skipped by id, so this costs the changed paths. Stops collecting past
 * `limit` paths (a wide change: the caller only needs to know that).
 */
export async function changedPaths(
  trees: TreeReader,
  oldRoot: string | null,
  newRoot: string,
  candidates: readonly string[],
  limit = Infinity,
): Promise<string[]> {
  const out = new Set<string>();
  const addWithParents = (path: string) => {
    for (let at = path; at !== '' && !out.has(at); at = parentOf(at)) out.add(at);
  };
  const compare = async (a: TreeEntry | null, b: TreeEntry | null, path: string): Promise<void> => {
    if (sameEntry(a, b) || out.size > limit) return;
    addWithParents(path);
    if (a?.type !== 'tree' && b?.type !== 'tree') return;
    const left = a?.type === 'tree' ? await trees.get(a.oid) : EMPTY;
    const right = b?.type === 'tree' ? await trees.get(b.oid) : EMPTY;
    for (const [name, before, after] of differingEntries(left, right)) await compare(before, after, joinPath(path, name));
  };
  for (const path of candidates) {
    const before = oldRoot === null ? null : await trees.lookup(oldRoot, path);
    await compare(before, await trees.lookup(newRoot, path), path);
  }
  return [...out];
}

/** A binary max-heap of commits in log order: newer commit time first, then higher generation, then id. */
class CommitQueue {
  private readonly items: Array<{ oid: string; time: number; generation: number }> = [];

  private static before(a: { oid: string; time: number; generation: number }, b: { oid: string; time: number; generation: number }): boolean {
    if (a.time !== b.time) return a.time > b.time;
    if (a.generation !== b.generation) return a.generation > b.generation;
    return a.oid < b.oid;
  }

  get size(): number {
    return this.items.length;
  }

  push(item: { oid: string; time: number; generation: number }): void {
    const items = this.items;
    items.push(item);
    for (let i = items.length - 1; i > 0;) {
      const up = (i - 1) >> 1;
      if (!CommitQueue.before(items[i]!, items[up]!)) break;
      [items[i], items[up]] = [items[up]!, items[i]!];
      i = up;
    }
  }

  pop(): { oid: string; time: number; generation: number } | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      for (let i = 0; ;) {
        const [l, r] = [2 * i + 1, 2 * i + 2];
        let best = i;
        if (l < items.length && CommitQueue.before(items[l]!, items[best]!)) best = l;
        if (r < items.length && CommitQueue.before(items[r]!, items[best]!)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best]!, items[i]!];
        i = best;
      }
    }
    return top;
  }
}

export class History {
  constructor(
    readonly objects: ObjectStore,
    readonly index: HistoryIndex,
    private readonly trees: TreeReader,
    private readonly vaultName: () => string,
  ) {}

  // --- building the index --------------------------------------------------------------

  /**
   * Stage index records for every commit reachable from `tip` that has none (all of them when
   * `rebuild`), parents before children, then the index head. `flush` writes what is staged
   * (the caller's batch); it is called every `chunk` commits so a rebuild stays bounded in memory.
   */
  async indexFrom(tip: string, options: { rebuild: boolean; flush: (ops: BatchOp[]) => void; chunk?: number }): Promise<number> {
    const { rebuild } = options;
    const chunk = options.chunk ?? 5_000;
    // A vault deleted while a stale handle rebuilds (a stream running over the deletion, its
    // objects still cached) must not get index records back: they would be orphans for ever.
    const flush = (ops: BatchOp[]) => {
      if (!this.objects.has(tip)) throw new KeynodeError('ERR_VAULT_NOT_FOUND', `no vault named "${this.vaultName()}"`, { vault: this.vaultName() });
      options.flush(ops);
    };
    const order: string[] = [];
    const facts = new Map<string, { parents: string[]; time: number; tree: string }>();
    const state = new Map<string, 1 | 2>();
    const stack = [tip];
    while (stack.length > 0) {
      const oid = stack[stack.length - 1]!;
      const seen = state.get(oid);
      if (seen === 2) {
        stack.pop();
      } else if (seen === 1) {
        state.set(oid, 2);
        stack.pop();
        order.push(oid);
      } else if (!rebuild && this.index.record(oid)) {
        state.set(oid, 2);
        stack.pop();
      } else {
        state.set(oid, 1);
        const commit = this.objects.readCommit(oid);
        facts.set(oid, { parents: commit.parents, time: commit.committer.timestamp, tree: commit.tree });
        for (const parent of commit.parents) if (!state.has(parent)) stack.push(parent);
      }
    }
    if (rebuild) {
      this.index.forget();
      this.index.stageDelete('hist/meta');
      this.index.stageDistrustedDeletes();
    }
    const buckets = rebuild ? new Map<string, Buffer>() : undefined;
    let staged = 0;
    for (const oid of order) {
      const fact = facts.get(oid)!;
      const parents = fact.parents.map((parent) => this.index.requireRecord(parent));
      let changed: string[] | null = null;
      if (parents.length <= 1) {
        const parentTree = fact.parents[0] === undefined ? null : (facts.get(fact.parents[0])?.tree ?? this.objects.readCommit(fact.parents[0]).tree);
        changed = await changedPaths(this.trees, parentTree, fact.tree, [''], WIDE_CHANGE_PATHS);
      }
      this.index.addCommit(oid, fact, changed, buckets);
      if (++staged % chunk === 0) flush(this.index.takePending());
    }
    if (buckets) this.index.stageBuckets(buckets);
    this.index.setIndexedHead(tip);
    flush(this.index.takePending());
    return order.length;
  }

  // --- resolving -----------------------------------------------------------------------

  private notFound(ref: string): KeynodeError {
    return new KeynodeError('ERR_COMMIT_NOT_FOUND', `no commit "${ref}" in vault "${this.vaultName()}"`, { vault: this.vaultName(), ref });
  }

  /** The ancestor `steps` first parents back from `oid`, or null; O(log steps) record reads. */
  firstParentAncestor(oid: string, steps: number): string | null {
    const start = this.index.requireRecord(oid);
    const target = start.depth - steps;
    if (target < 0) return null;
    let [at, record] = [oid, start];
    while (record.depth > target) {
      const useJump = record.jump !== null && record.jumpDepth >= target;
      const next = useJump ? record.jump! : record.parents[0];
      const expected = useJump ? record.jumpDepth : record.depth - 1;
      if (next === undefined) throw new IndexInconsistent('a non-root commit has no parent');
      const nextRecord = this.index.requireRecord(next);
      if (nextRecord.depth !== expected) throw new IndexInconsistent('depths disagree');
      [at, record] = [next, nextRecord];
    }
    return at;
  }

  /** Check an index answer against the commit object (which the caller reads anyway). */
  private verified(oid: string): string {
    const record = this.index.requireRecord(oid);
    const commit = this.objects.readCommit(oid);
    if (commit.parents.length !== record.parents.length || commit.parents.some((parent, i) => parent !== record.parents[i])) {
      throw new IndexInconsistent(`parents of ${oid.slice(0, 12)} disagree`);
    }
    return oid;
  }

  /**
   * HEAD, a full commit id or an unambiguous prefix (at least COMMIT_PREFIX_MIN_CHARS hex
   * digits), followed by any of ~N (N first parents back), ~ (~1), ^N (the N-th parent), ^ (^1).
   */
  resolve(ref: string, head: string): string {
    const match = /^(HEAD|[0-9a-fA-F]+)((?:[~^][0-9]*)*)$/.exec(ref);
    if (!match) throw this.notFound(ref);
    let oid = match[1] === 'HEAD' ? head : this.resolveId(match[1]!.toLowerCase(), ref);
    for (const step of match[2]!.match(/[~^][0-9]*/g) ?? []) {
      const count = step.length > 1 ? Number(step.slice(1)) : 1;
      if (!Number.isSafeInteger(count)) throw this.notFound(ref);
      if (step[0] === '~') {
        const ancestor = this.firstParentAncestor(oid, count);
        if (ancestor === null) throw this.notFound(ref);
        oid = ancestor;
      } else if (count > 0) {
        const parent = this.index.requireRecord(oid).parents[count - 1];
        if (parent === undefined) throw this.notFound(ref);
        oid = parent;
      }
    }
    return this.verified(oid);
  }

  private resolveId(prefix: string, ref: string): string {
    if (prefix.length < Math.max(COMMIT_PREFIX_MIN_CHARS, PREFIX_BUCKET_HEX) || prefix.length > 40) throw this.notFound(ref);
    if (prefix.length === 40) {
      if (!this.index.record(prefix)) throw this.notFound(ref);
      return prefix;
    }
    const matches = this.index.bucket(prefix).filter((oid) => oid.startsWith(prefix));
    if (matches.length === 0) throw this.notFound(ref);
    if (matches.length > 1) {
      throw new KeynodeError(
        'ERR_INVALID_ARGUMENT',
        `commit prefix "${ref}" is ambiguous in vault "${this.vaultName()}": ${matches.length} commits start with it; give more digits`,
        {
          ref,
          vault: this.vaultName(),
        },
      );
    }
    if (!this.index.record(matches[0]!)) throw this.index.distrust(prefixBucketName(prefix), 'a bucket names an unindexed commit');
    return matches[0]!;
  }

  // --- log -----------------------------------------------------------------------------

  /**
   * Whether `commit` changed `path`: its entry differs from that in every parent (a root commit:
   * it exists). `treeOf` gives a parent's root tree when the caller has it at hand.
   */
  async changes(commit: { tree: string; parents: readonly string[] }, path: string, treeOf?: (oid: string) => string | undefined): Promise<boolean> {
    const here = await this.trees.lookup(commit.tree, path);
    if (commit.parents.length === 0) return here !== null;
    for (const parent of commit.parents) {
      const tree = treeOf?.(parent) ?? this.objects.readCommit(parent).tree;
      if (sameEntry(here, await this.trees.lookup(tree, path))) return false;
    }
    return true;
  }

  /**
   * `changes` during a walk: a one-parent, narrow commit answers from the paths its index
   * entry says it changed (a hit is confirmed on the trees); merges, root and wide commits
   * compare trees.
   */
  private async changedInWalk(
    oid: string,
    commit: LogCommit,
    path: string,
    entry: LogEntry | undefined,
    treeOf: (oid: string) => string | undefined,
  ): Promise<boolean> {
    if (commit.parents.length === 1) {
      let changed = entry?.changed ?? null;
      if (!entry) {
        const record = this.index.requireRecord(oid);
        if (record.parents.length !== 1 || record.parents[0] !== commit.parents[0]) throw new IndexInconsistent(`parents of ${oid.slice(0, 12)} disagree`);
        changed = record.wide ? null : record.changed;
      }
      if (changed !== null) {
        if (!changed.includes(path)) return false;
        if (!(await this.changes(commit, path, treeOf))) throw new IndexInconsistent(`${oid.slice(0, 12)} is recorded as changing a path it did not change`);
        return true;
      }
    }
    return this.changes(commit, path, treeOf);
  }

  /** A log page entry as a LogCommit (a message left out of the page is read from the object). */
  private logCommit(entry: LogEntry): LogCommit {
    return { tree: entry.tree, parents: entry.parents, author: entry.author, message: entry.message ?? this.objects.readCommit(entry.oid).message };
  }

  /**
   * Commits reachable from `head`, newest first (commit time, then generation), each once;
   * with `path`, only those that changed it.
   */
  async walk(head: string, options: { path?: string; limit?: number }): Promise<Array<{ oid: string; commit: LogCommit }>> {
    const result: Array<{ oid: string; commit: LogCommit }> = [];
    for await (const found of this.commits(head, options)) result.push(found);
    return result;
  }

  /**
   * `walk` as a generator, for a log streamed to its reader: a merge-free history holds nothing
   * but the current commit; with merges, the queue and the ids already queued. The caller may stop.
   */
  async *commits(head: string, options: { path?: string; limit?: number }): AsyncGenerator<{ oid: string; commit: LogCommit }, void, undefined> {
    const limit = options.limit ?? Infinity;
    const path = options.path === '' ? undefined : options.path;
    let produced = 0;
    if (limit <= 0) return;
    const headRecord = this.index.requireRecord(head);
    let start = head;
    if (path !== undefined && !headRecord.merges) {
      const newest = await this.lastChangeLinear(head, headRecord, path);
      if (newest === null) return;
      start = newest;
    }
    if (!headRecord.merges) {
      // No merge anywhere: the log is the first-parent chain, no ordering needed. A commit that
      // heads a log page brings the next LOG_PAGE_COMMITS commits in one record; others are read
      // from their objects. Only the current page is held.
      let depth = start === head ? headRecord.depth : this.index.requireRecord(start).depth;
      let page = new Map<string, LogEntry>();
      const treeOf = (oid: string) => page.get(oid)?.tree;
      for (let oid: string | undefined = start; oid !== undefined && produced < limit; depth--) {
        if (!page.has(oid) && headsLogPage({ depth })) {
          const entries = this.index.logPage(oid);
          if (!entries) throw new IndexInconsistent(`no log page for ${oid.slice(0, 12)}`);
          page = new Map(entries.map((entry) => [entry.oid, entry]));
        }
        const entry = page.get(oid);
        const commit: LogCommit = entry ? this.logCommit(entry) : this.objects.readCommit(oid);
        if (commit.parents.length > 1) throw new IndexInconsistent('a merge in a history recorded as linear');
        if (depth === 0 && commit.parents.length > 0) throw new IndexInconsistent('a commit below the recorded root');
        if (path === undefined || (await this.changedInWalk(oid, commit, path, entry, treeOf))) {
          produced++;
          yield { oid, commit };
        }
        oid = commit.parents[0];
      }
      return;
    }
    // Entries of log pages met on the way, each dropped once its commit is shown (so memory
    // holds about the walk's frontier, not the history).
    const loaded = new Map<string, LogEntry>();
    const keyOf = (oid: string): { time: number; generation: number } => {
      const entry = loaded.get(oid);
      if (entry) return entry;
      const record = this.index.requireRecord(oid);
      if (headsLogPage(record)) for (const paged of this.index.logPage(oid) ?? []) if (!loaded.has(paged.oid)) loaded.set(paged.oid, paged);
      return record;
    };
    const treeOf = (oid: string) => loaded.get(oid)?.tree;
    const queue = new CommitQueue();
    const queued = new Set<string>([head]);
    const headKey = keyOf(head);
    queue.push({ oid: head, time: headKey.time, generation: headKey.generation });
    while (queue.size > 0 && produced < limit) {
      const { oid } = queue.pop()!;
      const entry = loaded.get(oid);
      const record = entry ? null : this.index.requireRecord(oid);
      let parents = entry ? entry.parents : record!.parents;
      // A path log passes over a one-parent commit whose index entry says it left the path
      // alone without reading its object (hits are confirmed on the objects and trees).
      const changed = entry ? entry.changed : record!.parents.length === 1 && !record!.wide ? record!.changed : null;
      if (path === undefined || changed === null || changed.includes(path)) {
        let commit: LogCommit;
        if (entry) {
          commit = this.logCommit(entry);
        } else {
          commit = this.objects.readCommit(oid);
          if (commit.parents.length !== parents.length || commit.parents.some((parent, i) => parent !== parents[i])) {
            throw new IndexInconsistent(`parents of ${oid.slice(0, 12)} disagree`);
          }
        }
        parents = commit.parents;
        if (path === undefined || (await this.changedInWalk(oid, commit, path, entry, treeOf))) {
          produced++;
          yield { oid, commit };
        }
      }
      for (const parent of parents) {
        if (queued.has(parent)) continue;
        queued.add(parent);
        const key = keyOf(parent);
        queue.push({ oid: parent, time: key.time, generation: key.generation });
      }
      loaded.delete(oid);
    }
  }

  /**
   * The newest commit that changed `path` in a merge-free history: the path record (the newest
   * narrow change) or a newer wide commit, whichever is newer; checked against the objects.
   */
  private async lastChangeLinear(head: string, headRecord: CommitRecord, path: string): Promise<string | null> {
    const narrow = this.index.pathRecord(path);
    let narrowDepth = -1;
    if (narrow !== null) {
      const record = this.index.record(narrow);
      if (!record || record.depth > headRecord.depth || this.firstParentAncestor(head, headRecord.depth - record.depth) !== narrow) {
        throw this.index.distrust(pathRecordName(path), 'a path record names a commit outside this history');
      }
      narrowDepth = record.depth;
      if (!(await this.changes(this.objects.readCommit(narrow), path)))
        throw this.index.distrust(pathRecordName(path), 'a path record names a commit that did not change it');
    }
    for (let wide = headRecord.wide ? head : headRecord.lastWide; wide !== null;) {
      const record = this.index.requireRecord(wide);
      if (record.depth <= narrowDepth) break;
      if (!record.wide) throw new IndexInconsistent('a wide-commit link names a narrow commit');
      if (await this.changes(this.objects.readCommit(wide), path)) return wide;
      wide = record.lastWide;
    }
    return narrow;
  }

  /** Whether `ancestor` is `oid` or one of its ancestors; walks only commits of higher generation. */
  descendsFrom(oid: string, ancestor: string): boolean {
    const floor = this.index.requireRecord(ancestor).generation;
    const seen = new Set<string>();
    const stack = [oid];
    while (stack.length > 0) {
      const at = stack.pop()!;
      if (at === ancestor) return true;
      if (seen.has(at)) continue;
      seen.add(at);
      const record = this.index.requireRecord(at);
      if (record.generation > floor) stack.push(...record.parents);
    }
    return false;
  }

  // --- diff and reachability -----------------------------------------------------------

  /** What changed between two root trees, sorted by path; costs the changed paths. */
  async diffTrees(fromTree: string, toTree: string): Promise<DiffEntry[]> {
    const result: DiffEntry[] = [];
    const addAll = async (entry: TreeEntry, path: string, status: 'added' | 'removed'): Promise<void> => {
      if (entry.type === 'blob') return void result.push({ path, status });
      for (const [name, child] of await this.trees.get(entry.oid)) await addAll(child, joinPath(path, name), status);
    };
    const compare = async (a: TreeEntry | null, b: TreeEntry | null, path: string): Promise<void> => {
      if (sameEntry(a, b)) return;
      if (a?.type === 'tree' && b?.type === 'tree') {
        const [left, right] = [await this.trees.get(a.oid), await this.trees.get(b.oid)];
        for (const [name, before, after] of differingEntries(left, right)) await compare(before, after, joinPath(path, name));
        return;
      }
      if (a?.type === 'blob' && b?.type === 'blob') return void result.push({ path, status: 'modified' });
      if (a) await addAll(a, path, 'removed');
      if (b) await addAll(b, path, 'added');
    };
    await compare({ mode: TREE_MODE, type: 'tree', oid: fromTree }, { mode: TREE_MODE, type: 'tree', oid: toTree }, '');
    return result.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  }

  /** Every object reachable from `head` through all parents (commits, trees, blobs), from the objects alone. */
  async reachableObjects(head: string): Promise<{ objects: string[]; commits: string[] }> {
    const seen = new Set<string>();
    const commits: string[] = [];
    const visitTree = async (oid: string): Promise<void> => {
      if (seen.has(oid)) return;
      seen.add(oid);
      for (const entry of (await this.trees.get(oid)).values()) {
        if (entry.type === 'tree') await visitTree(entry.oid);
        else seen.add(entry.oid);
      }
    };
    const stack = [head];
    while (stack.length > 0) {
      const oid = stack.pop()!;
      if (seen.has(oid)) continue;
      seen.add(oid);
      commits.push(oid);
      const commit = this.objects.readCommit(oid);
      await visitTree(commit.tree);
      for (const parent of commit.parents) if (!seen.has(parent)) stack.push(parent);
    }
    return { objects: [...seen], commits };
  }
}
