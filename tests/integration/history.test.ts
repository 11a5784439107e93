import { describe, expect, it } from 'vitest';
import { encodeBlob, encodeCommit, encodeTree, type EncodedObject } from '../../src/vaults/gitObjects.js';
import { LOG_PAGE_COMMITS } from '../../src/vaults/historyIndex.js';
import type { Vault } from '../../src/vaults/Vault.js';
import type { TreeEntry } from '../../src/vaults/trees.js';
import { createTestNode } from '../helpers/index.js';

/**
 * A 30,000-commit history on a real store: history queries must cost the answer, not the
 * history. Asserted on the objects and index records read (counters), never on time.
 */
const COMMITS = 30_000;
const KEYS = 7;

/**
 * Land a linear history: commit i flips k/(i % KEYS) between two values, so the vault cycles
 * through 2·KEYS trees (built once; each commit adds only its commit object) and the index is
 * maintained from cached trees: 30,000 commits land in seconds. `fixed` is set once, by the first.
 */
const valueAt = (i: number, key: number): string => `v${Math.floor((i - key) / KEYS) % 2}`;

async function buildHistory(vault: Vault): Promise<string[]> {
  const oids: string[] = [];
  const fixed = encodeBlob(Buffer.from('set once'));
  const blobs = [encodeBlob(Buffer.from('v0')), encodeBlob(Buffer.from('v1'))];
  const roots = new Set<string>();
  let objects: EncodedObject[] = [fixed, ...blobs];
  const rootAt = (i: number): string => {
    const keys = new Map<string, TreeEntry>();
    for (let key = 0; key < KEYS && key <= i; key++) keys.set(`${key}`, { mode: '100644', type: 'blob', oid: blobs[valueAt(i, key) === 'v0' ? 0 : 1]!.oid });
    const dir = encodeTree(keys);
    const root = encodeTree(
      new Map<string, TreeEntry>([
        ['fixed', { mode: '100644', type: 'blob', oid: fixed.oid }],
        ['k', { mode: '040000', type: 'tree', oid: dir.oid }],
      ]),
    );
    if (!roots.has(root.oid)) objects.push(dir, root);
    roots.add(root.oid);
    return root.oid;
  };
  let parent = vault.headCommit;
  const time = Math.floor(Date.now() / 1000);
  for (let i = 0; i < COMMITS; i++) {
    const commit = encodeCommit({ tree: rootAt(i), parents: [parent], author: { name: 'n', email: 'n@n', timestamp: time + i }, message: `c${i}` });
    objects.push(commit);
    oids.push(commit.oid);
    parent = commit.oid;
    if ((i + 1) % 10_000 === 0) {
      await vault.landCommits({ objects, head: parent });
      objects = [];
    }
  }
  return oids;
}

function counted(vault: Vault) {
  const before = vault.workCounters;
  return () => {
    const after = vault.workCounters;
    return { objects: after.objectReads - before.objectReads, records: after.indexRecordReads - before.indexRecordReads };
  };
}

describe(`history of ${COMMITS.toLocaleString('en')} commits`, () => {
  it('log -n, HEAD~N, ids, prefixes, stat, log --path -n 1 and diff read a handful of objects and records', { timeout: 120_000 }, async () => {
    const { node } = await createTestNode();
    const vault = await node.vaults.createVault('big');
    const oids = await buildHistory(vault);
    const head = oids[oids.length - 1]!;
    expect(vault.headCommit).toBe(head);

    let work = counted(vault);
    expect((await vault.log({ limit: 20 })).map((c) => c.commit)).toEqual(oids.slice(-20).reverse());
    expect(work().objects).toBeLessThanOrEqual(20);
    expect(work().records).toBeLessThanOrEqual(2);

    // The whole log reads one log page per LOG_PAGE_COMMITS commits, objects only above the first page.
    work = counted(vault);
    const whole = await vault.log();
    expect(whole).toHaveLength(COMMITS + 1);
    expect(whole[COMMITS - 1 - 12_345]).toMatchObject({ commit: oids[12_345], message: 'c12345', author: 'n', parents: [oids[12_344]] });
    expect(work().records).toBeLessThanOrEqual(Math.ceil(COMMITS / LOG_PAGE_COMMITS) + 2);
    expect(work().objects).toBeLessThanOrEqual(LOG_PAGE_COMMITS);

    const half = oids[oids.length - 1 - 15_000]!;
    work = counted(vault);
    expect(await vault.resolveCommit('HEAD~15000')).toBe(half);
    // Jump pointers: O(log N) records, about 2 log2(15,000) = 28 at most.
    expect(work().records).toBeLessThanOrEqual(40);
    expect(work().objects).toBeLessThanOrEqual(1);

    const old = oids[123]!;
    for (const ref of [old, old.slice(0, 8)]) {
      work = counted(vault);
      expect(await vault.resolveCommit(ref)).toBe(old);
      expect(work().records).toBeLessThanOrEqual(2);
      expect(work().objects).toBeLessThanOrEqual(1);
    }

    // `fixed` last changed in the first landed commit, 30,000 commits ago.
    work = counted(vault);
    expect((await vault.stat('fixed')).modified?.commit).toBe(oids[0]);
    expect((await vault.log({ path: 'fixed', limit: 1 })).map((c) => c.commit)).toEqual([oids[0]]);
    expect(work().records).toBeLessThanOrEqual(100);
    expect(work().objects).toBeLessThanOrEqual(20);

    work = counted(vault);
    const changes = await vault.diff('HEAD~15000', 'HEAD');
    const [from, to] = [COMMITS - 1 - 15_000, COMMITS - 1];
    const differing = [...Array(KEYS).keys()].filter((key) => valueAt(from, key) !== valueAt(to, key)).map((key) => `k/${key}`);
    expect(differing.length).toBeGreaterThan(0);
    expect(changes.map((c) => c.path)).toEqual(differing);
    expect(work().records).toBeLessThanOrEqual(40);
    // The changed values' blobs are not read (no values asked); trees and commits only.
    expect(work().objects).toBeLessThanOrEqual(10);
    node.close();
  });
});
