import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import { pathRecordName, prefixBucketName } from '../../src/vaults/historyIndex.js';
import type { Vault } from '../../src/vaults/Vault.js';
import { createTestNode, TEST_PASSWORD } from '../helpers/index.js';
import { answers, codeOf, expected, Model, modelOf, rawStore } from '../helpers/historyModel.js';

/**
 * Adversarial pass on the history index: vault writes mixed with landed merges (criss-cross,
 * octopus, swapped parent order, equal timestamps), and index records that are deleted,
 * damaged or stale. Every answer is compared with a brute-force walk of a model of the graph
 * (tests/helpers/historyModel.ts).
 */

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
