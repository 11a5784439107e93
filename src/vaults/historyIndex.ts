import { KeynodeError } from '../errors.js';
import type { BatchOp, LogStore } from '../storage/LogStore.js';
import type { Keyspace } from '../storage/Keyspace.js';
import { LruCache, type ObjectStore } from './objects.js';

/**
 * The history index: records in the vault's keyspace (so sealed like everything else) that
 * let history queries skip the history between HEAD and the answer. Maintained in the same
 * batch as the commit that changes it; rebuilt from the commit objects when missing or found
 * inconsistent with them. Records (docs/storage-format.md, "History index"):
 *
 *   hist/meta          {"v":1,"head":OID}: the commit the index is complete for
 *   hist/c/OID         one per commit: generation, first-parent depth, parents, a skew-binary
 *                      jump pointer along first parents, commit time, merge/wide flags and the
 *                      paths it changed (for `hist/p` bookkeeping)
 *   hist/x/HHHH        ids (20 bytes each) of the commits whose id starts with those 4 hex digits
 *   hist/p/PATH        the newest commit that changed PATH (a secret or directory), kept while
 *                      the history has no merge commit
 *   hist/l/OID         a log page, for a commit whose depth is LOG_PAGE_COMMITS·k − 1: what `log`
 *                      prints of it and of its LOG_PAGE_COMMITS − 1 first-parent ancestors, so a
 *                      long log reads one record per page instead of one object per commit
 *
 * Older versions (1: no log pages; 2: pages of another row form) are rebuilt on first use.
 */
export const INDEX_VERSION = 3;
export const INDEX_META_RECORD = 'hist/meta';
export const commitRecordName = (oid: string): string => `hist/c/${oid}`;
export const PREFIX_BUCKET_HEX = 4;
export const prefixBucketName = (oidOrPrefix: string): string => `hist/x/${oidOrPrefix.slice(0, PREFIX_BUCKET_HEX)}`;
export const pathRecordName = (path: string): string => `hist/p/${path}`;
/**
 * A commit changing more paths than this (an import) is "wide": its paths get no `hist/p`
 * records (that would double the import); path queries check the few wide commits directly.
 */
export const WIDE_CHANGE_PATHS = 1_000;
/** Commits per log page (one record read and decrypted instead of this many objects). */
export const LOG_PAGE_COMMITS = 256;
/** Longer messages stay out of log pages (the walk reads such a commit's object): pages stay small. */
export const LOG_PAGE_MESSAGE_CHARS = 1_024;
export const logPageName = (oid: string): string => `hist/l/${oid}`;
/** Whether the commit with this record heads a log page. */
export const headsLogPage = (record: { depth: number }): boolean => record.depth % LOG_PAGE_COMMITS === LOG_PAGE_COMMITS - 1;

/** What a log walk needs of one commit: its place in the graph and what `log` prints. */
export interface LogEntry {
  oid: string;
  parents: string[];
  tree: string;
  /** Committer time, seconds (the walk's order). */
  time: number;
  generation: number;
  author: { name: string; timestamp: number };
  /** Null when longer than LOG_PAGE_MESSAGE_CHARS: read it from the commit object. */
  message: string | null;
  /** For a one-parent, narrow commit: the paths it changed (CommitRecord.changed); else null. */
  changed: string[] | null;
}

type PageRow = [string, string[], string, number, number, string, number, string | null, string[] | null];

export function encodeLogPage(entries: readonly LogEntry[]): Buffer {
  // A row's first parent is the next row's commit: only the last row lists all its parents.
  const rows: PageRow[] = entries.map((e, i) => [
    e.oid,
    i < entries.length - 1 ? e.parents.slice(1) : e.parents,
    e.tree,
    e.time,
    e.generation,
    e.author.name,
    e.author.timestamp,
    e.message,
    e.changed,
  ]);
  return Buffer.from(JSON.stringify(rows), 'utf8');
}

/** A checked decode of a log page headed by `oid`: exactly LOG_PAGE_COMMITS entries along first parents, or null. */
export function decodeLogPage(oid: string, bytes: Buffer): LogEntry[] | null {
  let rows: unknown;
  try {
    rows = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(rows) || rows.length !== LOG_PAGE_COMMITS) return null;
  // Ids checked for shape only: a page is sealed under the vault key, and a page that names a
  // wrong id fails where the id is used (a missing object or record), so the walk rebuilds.
  const isOid = (value: unknown): value is string => typeof value === 'string' && value.length === 40;
  const raw = rows as unknown[];
  const entries: LogEntry[] = [];
  for (let i = 0; i < raw.length; i++) {
    const row = raw[i];
    if (!Array.isArray(row) || row.length !== 9) return null;
    const [o, p, r, t, g, a, at, m, ch] = row as unknown[];
    if (!(ch === null || (Array.isArray(ch) && ch.every((path) => typeof path === 'string' && path !== '')))) return null;
    if (!isOid(o) || !Array.isArray(p) || !p.every(isOid) || !isOid(r) || !isCount(t) || !isCount(g) || g < 1) return null;
    if (typeof a !== 'string' || !isCount(at) || !(m === null || typeof m === 'string')) return null;
    if (i === 0 && o !== oid) return null;
    // Along first parents: a row's first parent is the next row (only the last row, the page
    // of depths 0..LOG_PAGE_COMMITS - 1, may be a root commit).
    let parents = p;
    if (i < raw.length - 1) {
      const next = raw[i + 1];
      if (!Array.isArray(next) || !isOid(next[0])) return null;
      parents = [next[0], ...p];
    }
    entries.push({ oid: o, parents, tree: r, time: t, generation: g, author: { name: a, timestamp: at }, message: m, changed: ch as string[] | null });
  }
  return entries;
}

export interface CommitRecord {
  /** Generation: 1 for a root commit, else 1 + the largest generation of its parents. */
  generation: number;
  /** Steps along first parents to the root commit (HEAD~N is the ancestor at depth - N). */
  depth: number;
  parents: string[];
  /** An ancestor along first parents (skew-binary jump), null for a root commit. */
  jump: string | null;
  jumpDepth: number;
  /** Committer time, seconds. */
  time: number;
  /** True when this commit or any ancestor is a merge (path records are then not kept). */
  merges: boolean;
  /** True when the commit changed more than WIDE_CHANGE_PATHS paths (then `changed` is empty). */
  wide: boolean;
  /** The newest wide commit among its first-parent ancestors (not itself), or null. */
  lastWide: string | null;
  /**
   * Paths (secrets and directories, not the root) this commit changed against its only parent
   * (all it holds, for a root commit); empty for a merge or a wide commit. Kept in merged
   * histories too: a path log over merges tests each one-parent commit against it, not its trees.
   */
  changed: string[];
}

const OID = /^[0-9a-f]{40}$/;
const isOid = (value: unknown): value is string => typeof value === 'string' && OID.test(value);
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

export function encodeCommitRecord(record: CommitRecord): Buffer {
  const { generation: g, depth: d, parents: p, jump: j, jumpDepth: jd, time: t, merges, wide, lastWide: lw, changed: ch } = record;
  return Buffer.from(JSON.stringify({ g, d, p, j, jd, t, m: merges ? 1 : 0, w: wide ? 1 : 0, lw, ch }), 'utf8');
}

/** A checked decode: null when the record is not what this version writes. */
export function decodeCommitRecord(bytes: Buffer): CommitRecord | null {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  if (!isCount(r.g) || r.g < 1 || !isCount(r.d) || !isCount(r.jd) || !isCount(r.t)) return null;
  if (!Array.isArray(r.p) || !r.p.every(isOid) || !(r.j === null || isOid(r.j)) || !(r.lw === null || isOid(r.lw))) return null;
  if ((r.m !== 0 && r.m !== 1) || (r.w !== 0 && r.w !== 1)) return null;
  if (!Array.isArray(r.ch) || !r.ch.every((path) => typeof path === 'string' && path !== '')) return null;
  return {
    generation: r.g,
    depth: r.d,
    parents: r.p,
    jump: r.j,
    jumpDepth: r.jd,
    time: r.t,
    merges: r.m === 1,
    wide: r.w === 1,
    lastWide: r.lw,
    changed: r.ch as string[],
  };
}

/** Thrown when an index record disagrees with the objects: the caller rebuilds and retries. */
export class IndexInconsistent extends Error {
  constructor(what: string) {
    super(`history index inconsistent: ${what}`);
  }
}

export interface IndexCounters {
  /** Index records read from the store (each decrypted). */
  recordReads: number;
}

/** Records decoded per vault; a few hundred bytes each. */
const RECORD_CACHE_ENTRIES = 20_000;

/**
 * Reads and stages index records. Staged records are visible to reads until the caller's
 * batch is written (`takePending`) or dropped (`discardPending`), exactly like staged objects.
 */
export class HistoryIndex {
  private pending = new Map<string, Buffer | null>();
  private readonly records = new LruCache<string, CommitRecord>(RECORD_CACHE_ENTRIES);
  /**
   * Records a query found lying that a rebuild might not rewrite (a path record or prefix
   * bucket no indexed commit writes again): the next full rebuild deletes them, else the
   * inconsistency would outlive every rebuild.
   */
  private readonly distrusted = new Set<string>();
  readonly counters: IndexCounters = { recordReads: 0 };

  constructor(
    private readonly store: LogStore,
    private readonly keyspace: Keyspace,
    readonly objects: ObjectStore,
  ) {}

  private read(name: string): Buffer | undefined {
    if (this.pending.has(name)) return this.pending.get(name) ?? undefined;
    this.counters.recordReads++;
    return this.store.get(this.keyspace, name);
  }

  private stage(name: string, value: Buffer | null): void {
    this.pending.set(name, value);
  }

  /** The commit the index is complete for, or null (no index, another version, damaged). */
  indexedHead(): string | null {
    const bytes = this.read(INDEX_META_RECORD);
    if (!bytes) return null;
    try {
      const meta = JSON.parse(bytes.toString('utf8')) as unknown;
      if (typeof meta !== 'object' || meta === null) return null;
      const { v, head } = meta as Record<string, unknown>;
      return v === INDEX_VERSION && isOid(head) ? head : null;
    } catch {
      return null;
    }
  }

  setIndexedHead(head: string): void {
    this.stage(INDEX_META_RECORD, Buffer.from(JSON.stringify({ v: INDEX_VERSION, head }), 'utf8'));
  }

  /** A commit's record, or null when it has none (not indexed). A malformed record is inconsistency. */
  record(oid: string): CommitRecord | null {
    const cached = this.records.get(oid);
    if (cached) return cached;
    const bytes = this.read(commitRecordName(oid));
    if (!bytes) return null;
    const record = decodeCommitRecord(bytes);
    if (!record) throw new IndexInconsistent(`malformed record for ${oid.slice(0, 12)}`);
    this.records.set(oid, record);
    return record;
  }

  /** A record that must exist (an indexed commit's ancestor). */
  requireRecord(oid: string): CommitRecord {
    const record = this.record(oid);
    if (!record) throw new IndexInconsistent(`no record for ${oid.slice(0, 12)}`);
    return record;
  }

  /** Full ids in the prefix bucket of `prefix` (≥ PREFIX_BUCKET_HEX hex digits). */
  bucket(prefix: string): string[] {
    const bytes = this.read(prefixBucketName(prefix));
    if (!bytes) return [];
    if (bytes.length % 20 !== 0) throw this.distrust(prefixBucketName(prefix), 'malformed prefix bucket');
    const ids: string[] = [];
    for (let at = 0; at < bytes.length; at += 20) ids.push(bytes.toString('hex', at, at + 20));
    return ids;
  }

  /** The newest commit recorded as changing `path`, or null. */
  pathRecord(path: string): string | null {
    const bytes = this.read(pathRecordName(path));
    if (!bytes) return null;
    const oid = bytes.toString('ascii');
    if (!isOid(oid)) throw this.distrust(pathRecordName(path), 'malformed path record');
    return oid;
  }

  /** The log page headed by `oid`, or null when it has none; a malformed page is inconsistency. */
  logPage(oid: string): LogEntry[] | null {
    const bytes = this.read(logPageName(oid));
    if (!bytes) return null;
    const page = decodeLogPage(oid, bytes);
    if (!page) throw new IndexInconsistent(`malformed log page for ${oid.slice(0, 12)}`);
    return page;
  }

  /** Stage the log page of a commit that heads one: it and its first-parent ancestors (all indexed). */
  private stageLogPage(oid: string, record: CommitRecord): void {
    const entries: LogEntry[] = [];
    let [at, atRecord]: [string | undefined, CommitRecord] = [oid, record];
    while (entries.length < LOG_PAGE_COMMITS) {
      if (at === undefined) throw new IndexInconsistent('a log page runs past the root commit');
      if (entries.length > 0) atRecord = this.requireRecord(at);
      const commit = this.objects.readCommit(at);
      const message = commit.message.length > LOG_PAGE_MESSAGE_CHARS ? null : commit.message;
      entries.push({
        oid: at,
        parents: commit.parents,
        tree: commit.tree,
        time: atRecord.time,
        generation: atRecord.generation,
        author: { name: commit.author.name, timestamp: commit.author.timestamp },
        message,
        changed: commit.parents.length === 1 && !atRecord.wide ? atRecord.changed : null,
      });
      at = commit.parents[0];
    }
    this.stage(logPageName(oid), encodeLogPage(entries));
  }

  /** The skew-binary jump for a child of `parent` (Myers' level-ancestor scheme: O(log n) hops). */
  private jumpFor(parentOid: string, parent: CommitRecord): { jump: string; jumpDepth: number } {
    if (parent.jump !== null) {
      const jumpRecord = this.requireRecord(parent.jump);
      if (jumpRecord.jump !== null && parent.depth - parent.jumpDepth === parent.jumpDepth - jumpRecord.jumpDepth) {
        return { jump: jumpRecord.jump, jumpDepth: jumpRecord.jumpDepth };
      }
    }
    return { jump: parentOid, jumpDepth: parent.depth };
  }

  /**
   * Stage the records for one commit whose parents are all indexed. `changed` lists the paths
   * it changed against its first parent (secrets and directories, not the root), or is null
   * for a merge commit.
   */
  addCommit(oid: string, commit: { parents: string[]; time: number }, changed: string[] | null, buckets?: Map<string, Buffer>): CommitRecord {
    const parents = commit.parents.map((parent) => this.requireRecord(parent));
    const first = parents[0];
    const merges = parents.length > 1 || parents.some((parent) => parent.merges);
    const wide = changed !== null && changed.length > WIDE_CHANGE_PATHS;
    const record: CommitRecord = {
      generation: 1 + Math.max(0, ...parents.map((parent) => parent.generation)),
      depth: first ? first.depth + 1 : 0,
      parents: commit.parents,
      ...(first ? this.jumpFor(commit.parents[0]!, first) : { jump: null, jumpDepth: 0 }),
      time: commit.time,
      merges,
      wide,
      lastWide: first ? (first.wide ? commit.parents[0]! : first.lastWide) : null,
      changed: parents.length > 1 || wide || changed === null ? [] : changed,
    };
    this.stage(commitRecordName(oid), encodeCommitRecord(record));
    this.records.set(oid, record);
    if (headsLogPage(record)) this.stageLogPage(oid, record);
    const bucketName = prefixBucketName(oid);
    const id = Buffer.from(oid, 'hex');
    if (buckets) {
      buckets.set(bucketName, Buffer.concat([buckets.get(bucketName) ?? Buffer.alloc(0), id]));
    } else {
      const existing = this.read(bucketName) ?? Buffer.alloc(0);
      if (existing.length % 20 !== 0) throw new IndexInconsistent('malformed prefix bucket');
      let present = false;
      for (let at = 0; at < existing.length && !present; at += 20) present = existing.subarray(at, at + 20).equals(id);
      if (!present) this.stage(bucketName, Buffer.concat([existing, id]));
    }
    if (!merges) for (const path of record.changed) this.stage(pathRecordName(path), Buffer.from(oid, 'ascii'));
    return record;
  }

  /** Note a record as wrong (deleted by the next full rebuild) and return the error to throw. */
  distrust(name: string, what: string): IndexInconsistent {
    this.distrusted.add(name);
    return new IndexInconsistent(what);
  }

  /** Stage the deletion of every distrusted record (a full rebuild rewrites those still due). */
  stageDistrustedDeletes(): void {
    for (const name of this.distrusted) this.stage(name, null);
    this.distrusted.clear();
  }

  /** Stage whole prefix buckets (a rebuild computes them in memory). */
  stageBuckets(buckets: Map<string, Buffer>): void {
    for (const [name, value] of buckets) this.stage(name, value);
  }

  /** Stage the removal of a record (the caller knows its name). */
  stageDelete(name: string): void {
    this.stage(name, null);
  }

  /** Forget cached records (after a failed batch or before a rebuild). */
  forget(): void {
    this.records.clear();
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  takePending(): BatchOp[] {
    const ops: BatchOp[] = [];
    for (const [name, value] of this.pending) {
      ops.push(value === null ? { keyspace: this.keyspace, name, delete: true } : { keyspace: this.keyspace, name, value });
    }
    this.pending = new Map();
    return ops;
  }

  discardPending(): void {
    this.pending = new Map();
    this.records.clear();
  }
}

/** Index records of one commit that exist (for `keynode check` and vault deletion). */
export function commitIndexRecordNames(oid: string, record: CommitRecord | null): string[] {
  if (!record) return [];
  return [commitRecordName(oid), prefixBucketName(oid), ...(headsLogPage(record) ? [logPageName(oid)] : []), ...record.changed.map(pathRecordName)];
}

export function indexError(vault: string): KeynodeError {
  return new KeynodeError('ERR_INTEGRITY', `the history index of vault "${vault}" stays inconsistent with its commits after a rebuild`, { vault });
}

/**
 * The history-index half of `keynode check` for one vault: every index record of the commits
 * found (`parents` by commit id, from the objects) is reported to `onRecord` so it is not an
 * orphan, and must decode and agree with its commit. Returns one line per disagreement; the
 * vault rebuilds such an index on its next history query.
 */
export function checkIndexRecords(options: {
  read: (name: string) => Buffer | undefined;
  has: (name: string) => boolean;
  commits: ReadonlyMap<string, readonly string[]>;
  onRecord: (name: string) => void;
}): string[] {
  const { read, has, commits, onRecord } = options;
  const problems: string[] = [];
  const seen = new Set<string>();
  const mark = (name: string) => {
    if (seen.has(name) || !has(name)) return false;
    seen.add(name);
    onRecord(name);
    return true;
  };
  if (mark(INDEX_META_RECORD)) {
    const meta = read(INDEX_META_RECORD);
    let head: unknown;
    try {
      head = (JSON.parse(meta?.toString('utf8') ?? '') as { head?: unknown }).head;
    } catch {
      head = undefined;
    }
    if (!isOid(head) || !commits.has(head)) problems.push('its history index names a head commit that is not in its history');
  }
  for (const [oid, parents] of commits) {
    if (!mark(commitRecordName(oid))) continue;
    const bytes = read(commitRecordName(oid));
    const record = bytes ? decodeCommitRecord(bytes) : null;
    if (!record || record.parents.length !== parents.length || record.parents.some((parent, i) => parent !== parents[i])) {
      problems.push(`its history index record for commit ${oid.slice(0, 12)} disagrees with the commit`);
      continue;
    }
    if (mark(prefixBucketName(oid))) {
      const bucket = read(prefixBucketName(oid));
      if (!bucket || bucket.length % 20 !== 0) problems.push(`its history index bucket ${prefixBucketName(oid).slice(7)} is malformed`);
    }
    for (const path of record.changed) mark(pathRecordName(path));
    if (headsLogPage(record) && mark(logPageName(oid))) {
      const page = read(logPageName(oid));
      const entries = page ? decodeLogPage(oid, page) : null;
      const agrees = (entry: LogEntry) => commits.get(entry.oid)?.join() === entry.parents.join();
      if (!entries || !entries.every(agrees)) problems.push(`its history index log page for commit ${oid.slice(0, 12)} disagrees with the commits`);
    }
  }
  return problems;
}
