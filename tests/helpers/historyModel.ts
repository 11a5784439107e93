import { phraseToMasterSecret } from '../../src/crypto/recoveryPhrase.js';
import { isKeynodeError } from '../../src/errors.js';
import { NodeKeys } from '../../src/keys/NodeKeys.js';
import { Keyspace } from '../../src/storage/Keyspace.js';
import { LogStore } from '../../src/storage/LogStore.js';
import { encodeBlob, encodeCommit, encodeTree, type EncodedObject } from '../../src/vaults/gitObjects.js';
import type { Vault } from '../../src/vaults/Vault.js';
import type { TreeEntry } from '../../src/vaults/trees.js';

/**
 * A model of a commit graph (file maps per commit) and a brute-force walk over it, for the
 * history tests: commits are encoded here, landed through Vault.landCommits, and every answer
 * of the history index is compared with the walk.
 */
export type Files = ReadonlyMap<string, string>;
export interface ModelCommit {
  oid: string;
  parents: string[];
  time: number;
  files: Files;
}

/** Encode a file map as git trees (nested), returning the root tree id and every object. */
export function encodeFiles(files: Files, out: EncodedObject[]): string {
  const build = (prefix: string): string => {
    const entries = new Map<string, TreeEntry>();
    const dirs = new Set<string>();
    for (const [path, value] of files) {
      if (!path.startsWith(prefix)) continue;
      const rest = path.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash >= 0) dirs.add(rest.slice(0, slash));
      else {
        const blob = encodeBlob(Buffer.from(value));
        out.push(blob);
        entries.set(rest, { mode: '100644', type: 'blob', oid: blob.oid });
      }
    }
    for (const dir of dirs) entries.set(dir, { mode: '040000', type: 'tree', oid: build(`${prefix}${dir}/`) });
    const tree = encodeTree(entries);
    out.push(tree);
    return tree.oid;
  };
  return build('');
}

export class Model {
  readonly commits = new Map<string, ModelCommit>();
  pending: EncodedObject[] = [];

  add(parents: string[], time: number, files: Files, message: string): string {
    const tree = encodeFiles(files, this.pending);
    const commit = encodeCommit({ tree, parents, author: { name: 'n', email: 'n@n', timestamp: time }, message });
    this.pending.push(commit);
    this.commits.set(commit.oid, { oid: commit.oid, parents, time, files });
    return commit.oid;
  }

  take(): EncodedObject[] {
    const objects = this.pending;
    this.pending = [];
    return objects;
  }

  private generation(oid: string, memo = new Map<string, number>()): number {
    const stack = [oid];
    while (stack.length) {
      const at = stack[stack.length - 1]!;
      const parents = this.commits.get(at)!.parents;
      const missing = parents.filter((p) => !memo.has(p));
      if (missing.length) stack.push(...missing);
      else {
        memo.set(at, 1 + Math.max(0, ...parents.map((p) => memo.get(p)!)));
        stack.pop();
      }
    }
    return memo.get(oid)!;
  }

  /** Newest first: commit time, then generation, then id; each reachable commit once. */
  log(head: string): string[] {
    const memo = new Map<string, number>();
    const queued = new Set([head]);
    const queue = [head];
    const out: string[] = [];
    const key = (oid: string) => [this.commits.get(oid)!.time, this.generation(oid, memo)] as const;
    while (queue.length) {
      queue.sort((a, b) => {
        const [ka, kb] = [key(a), key(b)];
        return kb[0] - ka[0] || kb[1] - ka[1] || (a < b ? -1 : 1);
      });
      const oid = queue.shift()!;
      out.push(oid);
      for (const parent of this.commits.get(oid)!.parents) {
        if (!queued.has(parent)) {
          queued.add(parent);
          queue.push(parent);
        }
      }
    }
    return out;
  }

  /** The entry at `path`: a file's value, a directory's whole content, or null. */
  private entry(files: Files, path: string): string | null {
    if (files.has(path)) return `f:${files.get(path)}`;
    const under = [...files].filter(([p]) => p.startsWith(`${path}/`)).sort();
    return under.length ? `d:${JSON.stringify(under)}` : null;
  }

  changes(oid: string, path: string): boolean {
    const commit = this.commits.get(oid)!;
    const here = this.entry(commit.files, path);
    if (commit.parents.length === 0) return here !== null;
    return commit.parents.every((p) => this.entry(this.commits.get(p)!.files, path) !== here);
  }

  firstParentAncestor(oid: string, steps: number): string | null {
    let at: string | undefined = oid;
    for (let i = 0; i < steps && at !== undefined; i++) at = this.commits.get(at)!.parents[0];
    return at ?? null;
  }
}

/** The model of a fresh vault's first commit (read back from the vault). */
export async function modelOf(vault: Vault): Promise<{ model: Model; root: string; time: number }> {
  const model = new Model();
  const [first] = await vault.log();
  const time = Math.floor(Date.parse(first!.time) / 1000);
  model.commits.set(first!.commit, { oid: first!.commit, parents: [], time, files: new Map() });
  return { model, root: first!.commit, time };
}

export async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    if (!isKeynodeError(error)) throw error;
    return error.code;
  }
}

export async function rawStore(nodePath: string, recoveryPhrase: string, vaultName: string) {
  const keys = new NodeKeys(phraseToMasterSecret(recoveryPhrase)!);
  const store = LogStore.open(nodePath, keys.storeBatchKey);
  const registry = JSON.parse(store.get(new Keyspace(keys.nodeKeyspaceSecret), 'vault-registry')!.toString('utf8')).vaults as Array<{
    name: string;
    key: string;
  }>;
  const keyspace = new Keyspace(Buffer.from(registry.find((v) => v.name === vaultName)!.key, 'base64'));
  return { store, keyspace };
}

/** Every answer the index gives, for comparison with the model. */
export async function answers(vault: Vault, model: Model, head: string, paths: string[]) {
  const log = (await vault.log()).map((c) => c.commit);
  const byPath: Record<string, string[]> = {};
  const newest: Record<string, string | null> = {};
  for (const path of paths) {
    byPath[path] = (await vault.log({ path })).map((c) => c.commit);
    newest[path] = (await vault.log({ path, limit: 1 }))[0]?.commit ?? null;
  }
  const back: Array<string | null> = [];
  for (let n = 0; n <= 12; n++) back.push(await vault.resolveCommit(`HEAD~${n}`).catch(() => null));
  const prefixes: Record<string, string> = {};
  for (const oid of model.log(head)) prefixes[oid] = await vault.resolveCommit(oid.slice(0, 10));
  return { log, byPath, newest, back, prefixes };
}

export function expected(model: Model, head: string, paths: string[]) {
  const log = model.log(head);
  const byPath: Record<string, string[]> = {};
  const newest: Record<string, string | null> = {};
  for (const path of paths) {
    byPath[path] = log.filter((oid) => model.changes(oid, path));
    newest[path] = byPath[path][0] ?? null;
  }
  const back: Array<string | null> = [];
  for (let n = 0; n <= 12; n++) back.push(model.firstParentAncestor(head, n));
  const prefixes: Record<string, string> = Object.fromEntries(log.map((oid) => [oid, oid]));
  return { log, byPath, newest, back, prefixes };
}
