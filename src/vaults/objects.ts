import { createHash } from 'node:crypto';
import { KeynodeError } from '../errors.js';
import type { BatchOp, LogStore } from '../storage/LogStore.js';
import type { Keyspace } from '../storage/Keyspace.js';
import { encodeCommit, type CommitFields } from './gitObjects.js';
import { largeBlobSize, readLargeBlob } from './largeBlobs.js';
import { LargeObjectError, objectRecordName, readWrappedObject } from './objectRecords.js';

/**
 * A vault's git objects: read (SHA-1 verified), parse commits, and stage new objects for the
 * commit batch. Reading is one store lookup, one hash and a parse: no fake file system, no
 * deflate/inflate round trip. Raw records are read only through `readWrappedObject`, so the
 * stored form of an object (e.g. trees kept as deltas) is that module's business.
 */

export interface Person {
  name: string;
  email: string;
  /** Seconds since the epoch. */
  timestamp: number;
  /** As git writes it, e.g. "+0000". */
  timezone: string;
}

export interface ParsedCommit {
  tree: string;
  parents: string[];
  author: Person;
  committer: Person;
  message: string;
}

const OID = /^[0-9a-f]{40}$/;
const PERSON = /^(.*) <([^<>\n]*)> (0|[1-9][0-9]{0,15}) ([+-][0-9]{4})$/;

function parsePerson(value: string): Person | null {
  const match = PERSON.exec(value);
  if (!match) return null;
  return { name: match[1]!, email: match[2]!, timestamp: Number(match[3]), timezone: match[4]! };
}

/**
 * A commit object's content (after "commit SIZE\0"), strictly: "tree", any number of
 * "parent", "author", "committer" in that order, then optional extra headers git allows
 * (gpgsig, encoding, mergetag…, with their continuation lines), an empty line and the message.
 * Returns null if malformed.
 */
export function parseCommitContent(content: Buffer): ParsedCommit | null {
  const end = content.indexOf('\n\n');
  if (end < 0) return null;
  const lines = content.toString('utf8', 0, end).split('\n');
  let at = 0;
  const header = (key: string): string | null => {
    const line = lines[at];
    if (line === undefined || !line.startsWith(`${key} `)) return null;
    at++;
    return line.slice(key.length + 1);
  };
  const tree = header('tree');
  if (tree === null || !OID.test(tree)) return null;
  const parents: string[] = [];
  for (let parent = header('parent'); parent !== null; parent = header('parent')) {
    if (!OID.test(parent)) return null;
    parents.push(parent);
  }
  const authorLine = header('author');
  const committerLine = header('committer');
  const author = authorLine === null ? null : parsePerson(authorLine);
  const committer = committerLine === null ? null : parsePerson(committerLine);
  if (!author || !committer) return null;
  for (; at < lines.length; at++) {
    // Extra headers ("key value") and their continuation lines (" value"); nothing else.
    if (!/^([a-z][a-z0-9-]* |[ ])/.test(lines[at]!)) return null;
  }
  return { tree, parents, author, committer, message: content.toString('utf8', end + 2) };
}

/** "type size\0content" split, with the size checked; null if malformed. */
export function unwrapObject(wrapped: Buffer): { type: string; content: Buffer } | null {
  const space = wrapped.indexOf(0x20);
  const nul = wrapped.indexOf(0);
  if (space < 0 || nul < space) return null;
  const size = wrapped.toString('ascii', space + 1, nul);
  const content = wrapped.subarray(nul + 1);
  if (!/^(0|[1-9][0-9]*)$/.test(size) || Number(size) !== content.length) return null;
  return { type: wrapped.toString('ascii', 0, space), content };
}

/** A map that drops its least recently used entry past `maxEntries` (never everything). */
export class LruCache<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly maxEntries: number) {}

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value as K);
  }

  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}

/** Parsed commits kept per vault: ~300 bytes each, so about 6 MB at most. */
export const COMMIT_CACHE_ENTRIES = 20_000;

/** Counters for tests and benchmarks: work done, not time taken. */
export interface ObjectStoreCounters {
  /** Object records read from the store (each decrypted and hashed). */
  objectReads: number;
}

export class ObjectStore {
  private pending = new Map<string, Uint8Array>();
  private readonly commits = new LruCache<string, ParsedCommit>(COMMIT_CACHE_ENTRIES);
  readonly counters: ObjectStoreCounters = { objectReads: 0 };

  constructor(
    private readonly store: LogStore,
    private readonly keyspace: Keyspace,
    /** For error messages: the vault's current name. */
    private readonly vaultName: () => string,
  ) {}

  private damaged(): KeynodeError {
    return new KeynodeError('ERR_INTEGRITY', `object damaged in vault "${this.vaultName()}"`);
  }

  /** Wrapped bytes from the pending batch or the store, unverified; undefined when absent. */
  readWrapped(oid: string): Buffer | undefined {
    return readWrappedObject((name) => this.pending.get(name) ?? this.store.get(this.keyspace, name), oid);
  }

  /** Raw object, its SHA-1 checked; a missing object that something refers to is damage. */
  readObject(oid: string): { type: string; content: Buffer } {
    this.counters.objectReads++;
    const wrapped = this.readWrapped(oid);
    if (!wrapped) throw new KeynodeError('ERR_INTEGRITY', `object missing from vault "${this.vaultName()}"`);
    if (createHash('sha1').update(wrapped).digest('hex') !== oid) throw this.damaged();
    const object = unwrapObject(wrapped);
    if (!object) throw this.damaged();
    return object;
  }

  readCommit(oid: string): ParsedCommit {
    const cached = this.commits.get(oid);
    if (cached) return cached;
    let object: { type: string; content: Buffer };
    try {
      object = this.readObject(oid);
    } catch (error) {
      if (error instanceof LargeObjectError) throw this.damaged(); // a blob's manifest where a commit should be
      throw error;
    }
    const { type, content } = object;
    const commit = type === 'commit' ? parseCommitContent(content) : null;
    if (!commit) throw this.damaged();
    this.commits.set(oid, commit);
    return commit;
  }

  readBlob(oid: string): Buffer {
    const { type, content } = this.readObject(oid);
    if (type !== 'blob') throw this.damaged();
    return content;
  }

  /**
   * A blob's content in pieces: a small blob in one, a large one chunk by chunk as it is
   * verified (largeBlobs.ts), never whole. Errors as readBlob's, thrown when iterated.
   */
  async *readBlobStream(oid: string): AsyncGenerator<Buffer, void, undefined> {
    let blob: Buffer;
    try {
      blob = this.readBlob(oid);
    } catch (error) {
      if (!(error instanceof LargeObjectError)) throw error;
      yield* readLargeBlob({ store: this.store, keyspace: this.keyspace, oid, manifest: error.manifest });
      return;
    }
    yield blob;
  }

  /** A blob's size; a large blob's from its manifest alone (no chunk read). */
  blobSize(oid: string): number {
    try {
      return this.readBlob(oid).length;
    } catch (error) {
      if (!(error instanceof LargeObjectError)) throw error;
      const size = largeBlobSize(error.manifest);
      if (size === null) throw this.damaged();
      return size;
    }
  }

  has(oid: string): boolean {
    const name = objectRecordName(oid);
    return this.pending.has(name) || this.store.has(this.keyspace, name);
  }

  /** Stage a wrapped object for the next batch; objects already stored are skipped. */
  putObject(oid: string, wrapped: Uint8Array): void {
    if (!this.has(oid)) this.pending.set(objectRecordName(oid), wrapped);
  }

  /** Encode and stage a commit; returns its id. */
  writeCommit(fields: CommitFields): string {
    const encoded = encodeCommit(fields);
    this.putObject(encoded.oid, encoded.wrapped);
    return encoded.oid;
  }

  /** Hand the staged objects to the caller's batch and start a new one. */
  takePending(): BatchOp[] {
    const ops: BatchOp[] = [];
    for (const [name, value] of this.pending) ops.push({ keyspace: this.keyspace, name, value });
    this.pending = new Map();
    return ops;
  }

  discardPending(): void {
    this.pending = new Map();
  }
}
