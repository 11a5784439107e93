import { deflateSync } from 'node:zlib';
import { KeynodeError } from '../errors.js';
import type { BatchOp, LogStore } from '../storage/LogStore.js';
import type { Keyspace } from '../storage/Keyspace.js';

/**
 * The file system isomorphic-git sees for one vault. Only loose objects exist:
 * `GITDIR/objects/ab/cdef…` maps to the record "obj/abcdef…" in the vault's keyspace, so object
 * ids and contents reach disk only as HMAC ids and ciphertext. Records hold the wrapped object
 * ("type size\0content", not deflated); isomorphic-git reads loose objects deflated, so
 * readFile deflates on demand (tree and commit parses, pack export: none on the hot path).
 * Writes are buffered in
 * `pending` until the vault commits them, with its head update, as one store batch.
 * Refs are not files here: the vault keeps its head in its own record.
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

function objectName(path: unknown): string | null {
  if (typeof path !== 'string' || !path.startsWith(OBJECTS_PREFIX)) return null;
  const rest = path.slice(OBJECTS_PREFIX.length);
  if (rest.length !== 41 || rest[2] !== '/') return null;
  return `obj/${rest.slice(0, 2)}${rest.slice(3)}`;
}

const FILE_STAT = { isFile: () => true, isDirectory: () => false, isSymbolicLink: () => false, size: 0, mode: 0o100644 };
const DIR_STAT = { isFile: () => false, isDirectory: () => true, isSymbolicLink: () => false, size: 0, mode: 0o040000 };

export class EncryptedGitFs {
  private pending = new Map<string, Uint8Array>();

  constructor(
    private readonly store: LogStore,
    private readonly keyspace: Keyspace,
  ) {}

  /** Wrapped object bytes, from the pending batch or the store. */
  readObject(name: string): Uint8Array | undefined {
    return this.pending.get(name) ?? this.store.get(this.keyspace, name);
  }

  hasObject(name: string): boolean {
    return this.pending.has(name) || this.store.has(this.keyspace, name);
  }

  /** Buffer a wrapped object for the next batch; objects already stored are skipped. */
  putObject(oid: string, wrapped: Uint8Array): void {
    const name = `obj/${oid}`;
    if (!this.hasObject(name)) this.pending.set(name, wrapped);
  }

  /** Hand the buffered object writes to the caller's batch and start a new buffer. */
  takePending(): BatchOp[] {
    const ops: BatchOp[] = [];
    for (const [name, value] of this.pending) ops.push({ keyspace: this.keyspace, name, value });
    this.pending = new Map();
    return ops;
  }

  discardPending(): void {
    this.pending = new Map();
  }

  /** The promise-style fs interface isomorphic-git expects (enumerable `promises`). */
  readonly promises = {
    readFile: async (path?: string, options?: { encoding?: string } | string): Promise<Uint8Array | string> => {
      const name = objectName(path);
      const bytes = name === null ? undefined : this.readObject(name);
      if (bytes === undefined) throw notFound(String(path));
      const encoding = typeof options === 'string' ? options : options?.encoding;
      const deflated = deflateSync(bytes, { level: 1 });
      return encoding === 'utf8' ? deflated.toString('utf8') : deflated;
    },
    writeFile: async (path: string): Promise<void> => {
      throw new KeynodeError('ERR_INTERNAL', `git tried to write ${String(path)}: vault objects are written by Vault only`);
    },
    stat: async (path: string) => {
      const name = objectName(path);
      if (name !== null && this.hasObject(name)) return FILE_STAT;
      if (path === GITDIR || path === `${GITDIR}/objects`) return DIR_STAT;
      throw notFound(path);
    },
    lstat: async (path: string) => this.promises.stat(path),
    readdir: async (path: string): Promise<string[]> => {
      throw notFound(path);
    },
    mkdir: async (): Promise<void> => {},
    rmdir: async (): Promise<void> => {},
    unlink: async (path: string): Promise<void> => {
      throw notFound(path);
    },
    readlink: async (path: string): Promise<string> => {
      throw notFound(path);
    },
    symlink: async (): Promise<void> => {
      throw new KeynodeError('ERR_INTERNAL', 'symlinks are not supported in a vault');
    },
    chmod: async (): Promise<void> => {},
  };
}
