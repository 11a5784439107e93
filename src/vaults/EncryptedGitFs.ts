import { deflateSync } from 'node:zlib';
import { KeynodeError } from '../errors.js';
import type { LogStore } from '../storage/LogStore.js';
import type { Keyspace } from '../storage/Keyspace.js';
import { BUNDLE_LARGE_VALUE_MAX_BYTES } from '../constants.js';
import { largeBlobChunks, largeBlobSize } from './largeBlobs.js';
import { LargeObjectError, objectRecordName, readWrappedObject } from './objectRecords.js';

/**
 * The read-only file system isomorphic-git sees when it packs a vault for bundle export, the
 * only thing it still does for us. Only loose objects exist: `GITDIR/objects/ab/cdef…` is the
 * object "abcdef…" of the vault's keyspace. isomorphic-git reads loose objects deflated, so
 * readFile deflates on demand (export only: history and secrets are read by ObjectStore).
 */
export const GITDIR = '/vault.git';
const OBJECTS_PREFIX = `${GITDIR}/objects/`;

/** An ENOENT like node:fs throws, without capturing a stack (git probes for absent files often). */
function notFound(path: string): NodeJS.ErrnoException {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const error: NodeJS.ErrnoException = new Error(`ENOENT: no such file, '${path}'`);
  Error.stackTraceLimit = limit;
  error.code = 'ENOENT';
  return error;
}

function objectId(path: unknown): string | null {
  if (typeof path !== 'string' || !path.startsWith(OBJECTS_PREFIX)) return null;
  const rest = path.slice(OBJECTS_PREFIX.length);
  if (rest.length !== 41 || rest[2] !== '/') return null;
  return `${rest.slice(0, 2)}${rest.slice(3)}`;
}

const FILE_STAT = { isFile: () => true, isDirectory: () => false, isSymbolicLink: () => false, size: 0, mode: 0o100644 };
const DIR_STAT = { isFile: () => false, isDirectory: () => true, isSymbolicLink: () => false, size: 0, mode: 0o040000 };

export class EncryptedGitFs {
  constructor(
    private readonly store: LogStore,
    private readonly keyspace: Keyspace,
  ) {}

  private wrapped(path: unknown): Buffer | undefined {
    const oid = objectId(path);
    if (oid === null) return undefined;
    try {
      return readWrappedObject((name) => this.store.get(this.keyspace, name), oid);
    } catch (error) {
      if (!(error instanceof LargeObjectError)) throw error;
      return this.materializeLargeBlob(oid, error.manifest);
    }
  }

  /**
   * A large blob whole, for git's pack (built in memory): bounded by BUNDLE_LARGE_VALUE_MAX_BYTES
   * (Vault.exportBundle refuses larger values before packing; this is the backstop).
   */
  private materializeLargeBlob(oid: string, manifest: Buffer): Buffer {
    const size = largeBlobSize(manifest);
    if (size === null) throw new KeynodeError('ERR_INTEGRITY', `large value ${oid.slice(0, 12)} is damaged (its manifest is malformed)`, { oid });
    if (size > BUNDLE_LARGE_VALUE_MAX_BYTES)
      throw new KeynodeError('ERR_NOT_SUPPORTED', 'a value is too large for a bundle export', { size, limit: BUNDLE_LARGE_VALUE_MAX_BYTES });
    const header = Buffer.from(`blob ${size}\0`, 'ascii');
    const whole = Buffer.allocUnsafe(header.length + size);
    let at = header.copy(whole, 0);
    for (const chunk of largeBlobChunks({ store: this.store, keyspace: this.keyspace, oid, manifest })) at += chunk.copy(whole, at);
    return whole;
  }

  private readonly refuse = async (path?: unknown): Promise<never> => {
    throw new KeynodeError('ERR_INTERNAL', `git tried to change ${String(path)} while exporting a vault`);
  };

  /** The promise-style fs interface isomorphic-git expects (enumerable `promises`). */
  readonly promises = {
    readFile: async (path?: string, options?: { encoding?: string } | string): Promise<Uint8Array | string> => {
      const bytes = this.wrapped(path);
      if (bytes === undefined) throw notFound(String(path));
      const encoding = typeof options === 'string' ? options : options?.encoding;
      const deflated = deflateSync(bytes, { level: 1 });
      return encoding === 'utf8' ? deflated.toString('utf8') : deflated;
    },
    stat: async (path: string) => {
      // Existence only: building the object (a delta tree, a large value) is readFile's work.
      const oid = objectId(path);
      if (oid !== null && this.store.has(this.keyspace, objectRecordName(oid))) return FILE_STAT;
      if (path === GITDIR || path === `${GITDIR}/objects`) return DIR_STAT;
      throw notFound(path);
    },
    lstat: async (path: string) => this.promises.stat(path),
    readdir: async (path: string): Promise<string[]> => {
      throw notFound(path);
    },
    readlink: async (path: string): Promise<string> => {
      throw notFound(path);
    },
    writeFile: this.refuse,
    mkdir: this.refuse,
    rmdir: this.refuse,
    unlink: this.refuse,
    symlink: this.refuse,
    chmod: this.refuse,
  };
}
