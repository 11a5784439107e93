import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { phraseToMasterSecret } from '../../src/crypto/recoveryPhrase.js';
import { isKeynodeError } from '../../src/errors.js';
import { NodeKeys } from '../../src/keys/NodeKeys.js';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import { Keyspace } from '../../src/storage/Keyspace.js';
import { LogStore } from '../../src/storage/LogStore.js';
import { encodeBlob, encodeCommit, encodeTree, type EncodedObject } from '../../src/vaults/gitObjects.js';
import { pathRecordName, prefixBucketName } from '../../src/vaults/historyIndex.js';
import type { Vault } from '../../src/vaults/Vault.js';
import type { TreeEntry } from '../../src/vaults/trees.js';
import { createTestNode, TEST_PASSWORD } from '../helpers/index.js';

/**
 * Adversarial pass on the history index: vault writes mixed with landed merges (criss-cross,
 * octopus, swapped parent order, equal timestamps), and index records that are deleted,
 * damaged or stale. Every answer is compared with a brute-force walk of a model of the graph
 * (the model and walk of tests/vaults/history.test.ts).
 */

type Files = ReadonlyMap<string, string>;
interface ModelCommit {
  oid: string;
  parents: string[];
  time: number;
  files: Files;
}

/** Encode a file map as git trees (nested), returning the root tree id and every object. */
function encodeFiles(files: Files, out: EncodedObject[]): string {
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

class Model {
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
async function modelOf(vault: Vault): Promise<{ model: Model; root: string; time: number }> {
  const model = new Model();
  const [first] = await vault.log();
  const time = Math.floor(Date.parse(first!.time) / 1000);
  model.commits.set(first!.commit, { oid: first!.commit, parents: [], time, files: new Map() });
  return { model, root: first!.commit, time };
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    if (!isKeynodeError(error)) throw error;
    return error.code;
  }
}

async function rawStore(nodePath: string, recoveryPhrase: string, vaultName: string) {
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
async function answers(vault: Vault, model: Model, head: string, paths: string[]) {
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

function expected(model: Model, head: string, paths: string[]) {
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

const PATHS = ['a', 'b', 'd', 'd/x', 'd/y'];

/** What `get --version <prefix>` answers for every path at every commit, next to the model's. */
async function versions(vault: Vault, model: Model, head: string) {
  const got: Record<string, string | null> = {};
  const want: Record<string, string | null> = {};
  for (const oid of model.log(head)) {
    for (const path of ['a', 'b', 'd/x', 'd/y']) {
      const key = `${oid.slice(0, 8)}:${path}`;
      got[key] = await vault.readSecret(path, { version: oid.slice(0, 8) }).then(
        (v) => v.toString(),
        () => null,
      );
      want[key] = model.commits.get(oid)!.files.get(path) ?? null;
    }
  }
  return { got, want };
}

describe('history index, adversarial', () => {
  it('vault writes mixed with landed merges (octopus, swapped parent order, criss-cross, equal times) answer like a brute-force walk (property)', async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), path: fc.constantFrom('a', 'b', 'd/x', 'd/y'), value: fc.constantFrom('1', '2', '3') }),
      fc.record({
        kind: fc.constant('merge' as const),
        // Side branches grown from any earlier commit, then one merge of HEAD and the sides.
        sides: fc.array(
          fc.record({
            base: fc.nat(),
            path: fc.constantFrom('a', 'b', 'd/x', 'd/y'),
            value: fc.constantFrom('1', '2', null),
            skew: fc.integer({ min: -2, max: 2 }),
          }),
          { minLength: 1, maxLength: 2 },
        ),
        headFirst: fc.boolean(),
        skew: fc.integer({ min: -1, max: 1 }),
        same: fc.boolean(),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 10 }), async (ops) => {
        const { node, nodePath } = await createTestNode();
        const vault = await node.vaults.createVault('v');
        const { model, root } = await modelOf(vault);
        const made = [root];
        let head = root;
        for (const [i, step] of ops.entries()) {
          if (step.kind === 'write') {
            const files = new Map(model.commits.get(head)!.files).set(step.path, `${step.value}-${i}`);
            const { commit } = await vault.writeSecret(step.path, Buffer.from(files.get(step.path)!));
            const [info] = await vault.log({ limit: 1 });
            model.commits.set(commit, { oid: commit, parents: [head], time: Math.floor(Date.parse(info!.time) / 1000), files });
            made.push(commit);
            head = commit;
          } else {
            const headTime = model.commits.get(head)!.time;
            const sides = step.sides.map((side, j) => {
              const base = made[side.base % made.length]!;
              const files = new Map(model.commits.get(base)!.files);
              if (side.value === null) files.delete(side.path);
              else files.set(side.path, `s${side.value}-${i}-${j}`);
              // Equal timestamps on purpose: the log order then falls to generation and id.
              return model.add([base], step.same ? headTime : headTime + side.skew, files, `side ${i}.${j}`);
            });
            const parents = [...new Set(step.headFirst ? [head, ...sides] : [...sides, head])];
            const files = new Map(model.commits.get(parents[0]!)!.files);
            for (const other of parents.slice(1)) for (const [k, v] of model.commits.get(other)!.files) if (!files.has(k)) files.set(k, v);
            head = model.add(parents, step.same ? headTime : headTime + step.skew, files, `merge ${i}`);
            made.push(...sides, head);
            await vault.landCommits({ objects: model.take(), head });
          }
        }
        const want = expected(model, head, PATHS);
        expect(await answers(vault, model, head, PATHS)).toEqual(want);
        const v = await versions(vault, model, head);
        expect(v.got).toEqual(v.want);
        // HEAD^N names the N-th parent exactly as the commit lists them.
        const parents = model.commits.get(head)!.parents;
        for (let n = 1; n <= 3; n++) expect(await vault.resolveCommit(`HEAD^${n}`).catch(() => null)).toBe(parents[n - 1] ?? null);
        expect(await vault.resolveCommit('HEAD^2~1').catch(() => null)).toBe(parents[1] ? model.firstParentAncestor(parents[1], 1) : null);
        node.close();
        // Reopened (records read from the store, not from the in-memory cache): the same answers.
        const reopened = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
        expect(await answers(await reopened.vaults.openVault('v'), model, head, PATHS)).toEqual(want);
        reopened.close();
      }),
      { numRuns: 20 },
    );
  }, 60_000);

  it('a path record or prefix bucket that no commit writes again, found lying, is deleted by the rebuild (not ERR_INTEGRITY for ever)', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    const vault = await node.vaults.createVault('v');
    const first = (await vault.writeSecret('a', Buffer.from('1'))).commit;
    const second = (await vault.writeSecret('b', Buffer.from('1'))).commit;
    node.close();
    let raw = await rawStore(nodePath, recoveryPhrase, 'v');
    // 'zz' was never written: its record names a real commit that did not change it. The
    // bucket of a prefix no commit has names a commit that does not exist.
    const hex = '0123456789abcdef';
    const prefix = [...hex].map((c) => `${c}${c}${c}${c}`).find((p) => ![first, second].some((oid) => oid.startsWith(p)))!;
    const ghost = prefix + 'f'.repeat(36);
    raw.store.write([
      { keyspace: raw.keyspace, name: pathRecordName('zz'), value: Buffer.from(first, 'ascii') },
      { keyspace: raw.keyspace, name: prefixBucketName(ghost), value: Buffer.from(ghost, 'hex') },
    ]);
    raw.store.close();
    const reopened = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
    const again = await reopened.vaults.openVault('v');
    expect(await again.log({ path: 'zz' })).toEqual([]);
    expect(await codeOf(again.resolveCommit(prefix))).toBe('ERR_COMMIT_NOT_FOUND');
    expect(await again.log({ path: 'a' }).then((log) => log.map((c) => c.commit))).toEqual([first]);
    reopened.close();
    raw = await rawStore(nodePath, recoveryPhrase, 'v');
    expect([raw.store.has(raw.keyspace, pathRecordName('zz')), raw.store.has(raw.keyspace, prefixBucketName(ghost))]).toEqual([false, false]);
    raw.store.close();
  });

  it('a rebuild on the handle of a deleted vault (a stream running over the deletion) writes no index records back', async () => {
    const { node, nodePath } = await createTestNode();
    const created = await node.vaults.createVault('v');
    const { model, time } = await modelOf(created);
    await created.writeSecret('a', Buffer.from('1'));
    const base = created.headCommit;
    model.commits.set(base, { oid: base, parents: [], time, files: new Map([['a', '1']]) });
    const left = model.add([base], time + 1, new Map([['a', '2']]), 'left');
    const right = model.add([base], time + 1, new Map([['a', '3']]), 'right');
    const merge = model.add([left, right], time + 2, new Map([['a', '2']]), 'merge');
    await created.landCommits({ objects: model.take(), head: merge });
    node.close();
    const reopened = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
    const vault = await reopened.vaults.openVault('v');
    // Every commit and tree in memory, as a busy agent would have them.
    for (const commit of await vault.log()) await vault.list('', { version: commit.commit });
    await reopened.vaults.deleteVault('v');
    // Its decoded index records evicted (as a full cache would): the next walk misses them and rebuilds.
    (vault as unknown as { index: { forget(): void } }).index.forget();
    expect(await codeOf(vault.log({ path: 'a' }))).toBe('ERR_VAULT_NOT_FOUND');
    const check = await reopened.check();
    expect(check.orphans).toBe(0);
    reopened.close();
  });

  it('a log or listing taken in pages is one version: writes landing between its pages change nothing in it', async () => {
    const { node } = await createTestNode();
    const vault = await node.vaults.createVault('v');
    await vault.writeSecrets(Array.from({ length: 3_000 }, (_, i) => ({ path: `big/${String(i).padStart(5, '0')}`, value: Buffer.from('x') })));
    for (let i = 0; i < 60; i++) await vault.writeSecret(`n/${i % 7}`, Buffer.from(String(i)));
    const [wantLog, wantList] = [await vault.log(), await vault.list('big')];
    const logPages = vault.logPages({ pageCommits: 5 });
    const listPages = vault.listPages('big');
    const [gotLog, gotList] = [[] as typeof wantLog, [] as typeof wantList];
    for (let i = 0; ; i++) {
      const [l, e] = [await logPages.next(), await listPages.next()];
      if (!l.done) gotLog.push(...l.value);
      if (!e.done) gotList.push(...e.value);
      if (l.done && e.done) break;
      await vault.writeSecret(`big/new${i}`, Buffer.from('y'));
      await vault.remove(`big/${String(i).padStart(5, '0')}`);
    }
    expect(gotLog).toEqual(wantLog);
    expect(gotList).toEqual(wantList);
    node.close();
  });
});
