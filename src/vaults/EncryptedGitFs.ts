import { deflateSync } from 'node:zlib';
import { KeynodeError } from '../errors.js';
import type { LogStore } from '../storage/LogStore.js';
import type { Keyspace } from '../storage/Keyspace.js';
import { readWrappedObject } from './objectRecords.js';

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
    return oid === null ? undefined : readWrappedObject((name) => this.store.get(this.keyspace, name), oid);
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
      if (this.wrapped(path) !== undefined) return FILE_STAT;
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
