import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isKeynodeError } from '../../src/errors.js';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import { encodeBlob } from '../../src/vaults/gitObjects.js';
import { differingEntries, diffCounters } from '../../src/vaults/history.js';
import {
  INDEX_META_RECORD,
  LOG_PAGE_COMMITS,
  LOG_PAGE_MESSAGE_CHARS,
  commitRecordName,
  logPageName,
  pathRecordName,
  prefixBucketName,
} from '../../src/vaults/historyIndex.js';
import { parseCommitContent } from '../../src/vaults/objects.js';
import { CompactTree, type TreeEntry } from '../../src/vaults/trees.js';
import { createTestNode, TEST_PASSWORD } from '../helpers/index.js';
import { answers, codeOf, expected, modelOf, rawStore } from '../helpers/historyModel.js';

/**
 * History walks over hand-built commit graphs with merges: the commits are encoded and landed
 * through Vault.landCommits, and every answer is compared with a brute-force walk over a model
 * of the graph (tests/helpers/historyModel.ts).
 */

describe('history over merge commits', () => {
  it("follows a merge's second parent: log, path log, stat, HEAD^2, reachable objects and deletion", async () => {
    const { node } = await createTestNode();
    const vault = await node.vaults.createVault('v');
    await vault.writeSecret('a', Buffer.from('1'));
    const { model, time } = await modelOf(vault);
    const base = vault.headCommit;
    model.commits.set(base, { oid: base, parents: [(await vault.log())[1]!.commit], time, files: new Map([['a', '1']]) });
    const main = model.add([base], time + 10, new Map([['a', '2']]), 'main');
    const side = model.add(
      [base],
      time + 5,
      new Map([
        ['a', '1'],
        ['side/b', 'only on the side'],
      ]),
      'side',
    );
    const merge = model.add(
      [main, side],
      time + 20,
      new Map([
        ['a', '2'],
        ['side/b', 'only on the side'],
      ]),
      'merge',
    );
    const objects = model.take();
    await vault.landCommits({ objects, head: merge });

    expect((await vault.log()).map((c) => c.message)).toEqual(['merge', 'main', 'side', 'set a', 'create vault']);
    expect((await vault.log({ path: 'side/b' })).map((c) => c.commit)).toEqual([side]);
    expect((await vault.stat('side/b')).modified?.commit).toBe(side);
    expect((await vault.stat('a')).modified?.commit).toBe(main);
    expect(await vault.resolveCommit('HEAD^2')).toBe(side);
    expect(await vault.resolveCommit('HEAD~1')).toBe(main);
    expect(await vault.resolveCommit(side.slice(0, 8))).toBe(side);
    expect((await vault.readSecret('side/b', { version: side.slice(0, 8) })).toString()).toBe('only on the side');
    const sideBlob = encodeBlob(Buffer.from('only on the side')).oid;
    expect(await vault.reachableObjects()).toContain(sideBlob);
    expect((await vault.deletionOps()).map((op) => op.name)).toEqual(expect.arrayContaining([`obj/${sideBlob}`, `obj/${side}`, commitRecordName(side)]));
    // A later write builds on the merge and keeps both branches in its history.
    await vault.writeSecret('c', Buffer.from('3'));
    expect((await vault.log({ limit: 3 })).map((c) => c.message)).toEqual(['set c', 'merge', 'main']);
    expect((await vault.log()).map((c) => c.commit)).toContain(side);
    node.close();
  });

  it('refuses to land a head that does not descend from HEAD, or an object that does not hash to its id', async () => {
    const { node } = await createTestNode();
    const vault = await node.vaults.createVault('v');
    const { model, time } = await modelOf(vault);
    const stranger = model.add([], time, new Map([['x', '1']]), 'unrelated root');
    expect(await codeOf(vault.landCommits({ objects: model.take(), head: stranger }))).toBe('ERR_INVALID_ARGUMENT');
    const blob = encodeBlob(Buffer.from('v'));
    expect(await codeOf(vault.landCommits({ objects: [{ oid: blob.oid, wrapped: Buffer.from('blob 1\0w') }], head: vault.headCommit }))).toBe('ERR_INTEGRITY');
    expect((await vault.log()).length).toBe(1);
    node.close();
  });

  it('says which prefix is ambiguous instead of picking one', async () => {
    const { node } = await createTestNode();
    const vault = await node.vaults.createVault('v');
    const { model, root, time } = await modelOf(vault);
    // Commits until two share their first 4 hex digits (birthday: a few hundred suffice).
    const seen = new Map<string, string>();
    let tip = root;
    let pair: [string, string] | null = null;
    for (let i = 0; !pair; i++) {
      tip = model.add([tip], time + i, new Map([['k', String(i)]]), `c${i}`);
      const prefix = tip.slice(0, 4);
      if (seen.has(prefix)) pair = [seen.get(prefix)!, tip];
      seen.set(prefix, tip);
    }
    await vault.landCommits({ objects: model.take(), head: tip });
    const error = await vault.resolveCommit(pair[0].slice(0, 4)).catch((e: unknown) => e);
    expect(isKeynodeError(error, 'ERR_INVALID_ARGUMENT') && /ambiguous/.test(error.message)).toBe(true);
    let common = 4;
    while (pair[0][common] === pair[1][common]) common++;
    expect(await vault.resolveCommit(pair[0].slice(0, common + 1))).toBe(pair[0]);
    node.close();
  });

  it('index answers equal a brute-force walk on random graphs with merges, and again after the index is deleted or damaged (property)', async () => {
    const paths = ['a', 'b', 'd', 'd/x', 'd/y'];
    const step = fc.record({
      parents: fc.array(fc.nat(), { minLength: 1, maxLength: 2 }),
      path: fc.constantFrom('a', 'b', 'd/x', 'd/y'),
      value: fc.constantFrom('1', '2', null),
      skew: fc.integer({ min: -3, max: 30 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), fc.constantFrom('delete', 'damage'), async (steps, harm) => {
        const { node, nodePath, recoveryPhrase } = await createTestNode();
        const vault = await node.vaults.createVault('v');
        const { model, root, time } = await modelOf(vault);
        const made = [root];
        steps.forEach((s, i) => {
          const parents = [...new Set(s.parents.map((p) => made[p % made.length]!))];
          const files = new Map(model.commits.get(parents[0]!)!.files);
          for (const other of parents.slice(1)) for (const [k, v] of model.commits.get(other)!.files) if (!files.has(k)) files.set(k, v);
          if (s.value === null) files.delete(s.path);
          else files.set(s.path, `${s.value}-${i % 3}`);
          made.push(model.add(parents, time + 10 + i + s.skew, files, `c${i}`));
        });
        // One last merge of every branch tip, so every commit is reachable.
        const tips = made.filter((oid) => ![...model.commits.values()].some((c) => c.parents.includes(oid)));
        const head = tips.length === 1 ? tips[0]! : model.add(tips, time + 100, model.commits.get(tips[0]!)!.files, 'merge all');
        await vault.landCommits({ objects: model.take(), head });
        const want = expected(model, head, paths);
        expect(await answers(vault, model, head, paths)).toEqual(want);
        node.close();

        const raw = await rawStore(nodePath, recoveryPhrase, 'v');
        const reachable = model.log(head);
        const names = [INDEX_META_RECORD, ...reachable.map(commitRecordName), ...reachable.map(prefixBucketName), ...paths.map(pathRecordName)];
        if (harm === 'delete') {
          raw.store.write(names.filter((name) => raw.store.has(raw.keyspace, name)).map((name) => ({ keyspace: raw.keyspace, name, delete: true as const })));
        } else {
          // Sealed records that decode but lie: every commit record claims the first commit's parents and depth.
          const lie = raw.store.get(raw.keyspace, commitRecordName(root))!;
          raw.store.write(reachable.filter((oid) => oid !== root).map((oid) => ({ keyspace: raw.keyspace, name: commitRecordName(oid), value: lie })));
        }
        raw.store.close();
        const reopened = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
        const again = await reopened.vaults.openVault('v');
        expect(await answers(again, model, head, paths)).toEqual(want);
        reopened.close();
      }),
      { numRuns: 25 },
    );
  });

  it('parses commits strictly: anything malformed is ERR_INTEGRITY', () => {
    const good = Buffer.from(`tree ${'a'.repeat(40)}\nparent ${'b'.repeat(40)}\nauthor n <e> 1 +0000\ncommitter n <e> 2 -0130\n\nmsg\n`);
    expect(parseCommitContent(good)).toMatchObject({
      tree: 'a'.repeat(40),
      parents: ['b'.repeat(40)],
      committer: { timestamp: 2, timezone: '-0130' },
      message: 'msg\n',
    });
    for (const bad of [
      `tree ${'a'.repeat(39)}\nauthor n <e> 1 +0000\ncommitter n <e> 2 +0000\n\nm`,
      `tree ${'a'.repeat(40)}\nparent xyz\nauthor n <e> 1 +0000\ncommitter n <e> 2 +0000\n\nm`,
      `tree ${'a'.repeat(40)}\ncommitter n <e> 2 +0000\n\nm`,
      `tree ${'a'.repeat(40)}\nauthor n <e> 1 +0000\ncommitter n <e> 2 +0000\nm`,
      `tree ${'a'.repeat(40)}\nauthor n <e> x +0000\ncommitter n <e> 2 +0000\n\nm`,
      `parent ${'b'.repeat(40)}\ntree ${'a'.repeat(40)}\nauthor n <e> 1 +0000\ncommitter n <e> 2 +0000\n\nm`,
    ]) {
      expect(parseCommitContent(Buffer.from(bad))).toBeNull();
    }
  });
});

describe('comparing directories', () => {
  const entryOf = (oid: number, tree: boolean): TreeEntry => ({
    mode: tree ? '040000' : '100644',
    type: tree ? 'tree' : 'blob',
    oid: oid.toString(16).padStart(40, '0'),
  });
  const byLookup = (left: ReadonlyMap<string, TreeEntry>, right: ReadonlyMap<string, TreeEntry>) => {
    const names = new Set([...left.keys(), ...right.keys()]);
    const out: Array<[string, string | null, string | null]> = [];
    for (const name of names) {
      const [a, b] = [left.get(name) ?? null, right.get(name) ?? null];
      if (a?.oid !== b?.oid || a?.type !== b?.type) out.push([name, a ? `${a.type}:${a.oid}` : null, b ? `${b.type}:${b.oid}` : null]);
    }
    return out.sort();
  };
  const merged = (pairs: Array<[string, TreeEntry | null, TreeEntry | null]>) => {
    // A name that is a secret on one side and a directory on the other comes as two items: join them.
    const joined = new Map<string, [string | null, string | null]>();
    for (const [name, a, b] of pairs) {
      const at = joined.get(name) ?? [null, null];
      joined.set(name, [a ? `${a.type}:${a.oid}` : at[0], b ? `${b.type}:${b.oid}` : at[1]]);
    }
    return [...joined].map(([name, [a, b]]) => [name, a, b] as [string, string | null, string | null]).sort();
  };

  it('finds exactly the entries that differ, in any two directories, by a merge in git order (property)', () => {
    const name = fc.oneof(
      fc.constantFrom('a', 'a.b', 'a-b', 'ab', 'b', 'é', '😀', '\uffee', 'z'),
      fc.string({ minLength: 1, maxLength: 4 }).filter((n) => !/[/\0]/.test(n) && n !== '.' && n !== '..'),
    );
    const side = fc.array(fc.tuple(name, fc.nat({ max: 3 }), fc.boolean()), { maxLength: 12 });
    fc.assert(
      fc.property(side, side, (l, r) => {
        const [left, right] = [l, r].map((items) => CompactTree.fromEntries(new Map(items.map(([n, oid, tree]) => [n, entryOf(oid + 1, tree)]))));
        expect(merged(differingEntries(left!, right!))).toEqual(byLookup(left!, right!));
      }),
      { numRuns: 300 },
    );
  });

  it('decodes only the changed entries of a 20,000-entry directory (a landed commit costs its change, not the directory)', () => {
    const entries = new Map<string, TreeEntry>();
    for (let i = 0; i < 20_000; i++) entries.set(`secret-${i}`, entryOf(i + 1, false));
    const before = CompactTree.fromEntries(entries);
    entries.set('secret-777', entryOf(999_999, false));
    entries.set('secret-new', entryOf(5, false));
    const after = CompactTree.fromEntries(entries);
    const decoded = diffCounters.entriesDecoded;
    expect(differingEntries(before, after).map(([name]) => name)).toEqual(['secret-777', 'secret-new']);
    // Old code: every entry of both sides (40,000); now the differing ones and their neighbours.
    expect(diffCounters.entriesDecoded - decoded).toBeLessThanOrEqual(8);
  });
});

describe('log pages', () => {
  it('a long log reads one page record per LOG_PAGE_COMMITS commits, with merges too, and a damaged page is rebuilt', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    const vault = await node.vaults.createVault('v');
    const { model, root, time } = await modelOf(vault);
    // A main line of 3 pages and a side line of 2 merged back: log order interleaves them.
    let [main, side] = [root, root];
    for (let i = 0; i < 3 * LOG_PAGE_COMMITS; i++) {
      main = model.add([main], time + 2 * i + 2, new Map([['m', `${i}`]]), i === 5 ? `long ${'x'.repeat(LOG_PAGE_MESSAGE_CHARS)}` : `m${i}`);
      if (i < 2 * LOG_PAGE_COMMITS) side = model.add([side], time + 2 * i + 1, new Map([['s', `${i}`]]), `s${i}`);
    }
    const head = model.add([main, side], time + 10_000, new Map([['m', 'x']]), 'merge');
    await vault.landCommits({ objects: model.take(), head });
    const want = model.log(head);
    const before = vault.workCounters;
    const log = await vault.log();
    expect(log.map((c) => c.commit)).toEqual(want);
    expect(log.find((c) => c.message.startsWith('long'))?.message).toHaveLength(5 + LOG_PAGE_MESSAGE_CHARS);
    const after = vault.workCounters;
    // Old code: one object per commit (1,281). Now: pages, records of commits above them, and the long message.
    expect(after.objectReads - before.objectReads).toBeLessThanOrEqual(2 * LOG_PAGE_COMMITS + 4);
    node.close();

    // A page that decodes but lies (another page's content) is found out and rebuilt.
    const raw = await rawStore(nodePath, recoveryPhrase, 'v');
    const pages = want.filter((oid) => raw.store.has(raw.keyspace, logPageName(oid)));
    expect(pages.length).toBeGreaterThanOrEqual(4);
    raw.store.write([{ keyspace: raw.keyspace, name: logPageName(pages[0]!), value: raw.store.get(raw.keyspace, logPageName(pages[1]!))! }]);
    raw.store.close();
    const reopened = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
    expect((await (await reopened.vaults.openVault('v')).log()).map((c) => c.commit)).toEqual(want);
    reopened.close();
  });
});

describe('path history over merges', () => {
  it('stat and log --path after a merge read index entries, not every commit and its trees', async () => {
    const { node, nodePath } = await createTestNode();
    const vault = await node.vaults.createVault('v');
    const { model, root, time } = await modelOf(vault);
    const first = model.add([root], time + 1, new Map([['fixed', 'once']]), 'fixed');
    let [main, side] = [first, first];
    for (let i = 0; i < 600; i++) {
      main = model.add(
        [main],
        time + 2 * i + 3,
        new Map([
          ['fixed', 'once'],
          ['a', `${i}`],
        ]),
        `a${i}`,
      );
      if (i < 300)
        side = model.add(
          [side],
          time + 2 * i + 2,
          new Map([
            ['fixed', 'once'],
            ['b', `${i}`],
          ]),
          `b${i}`,
        );
    }
    const head = model.add(
      [main, side],
      time + 5_000,
      new Map([
        ['fixed', 'once'],
        ['a', '599'],
        ['b', '299'],
      ]),
      'merge',
    );
    await vault.landCommits({ objects: model.take(), head });
    node.close();

    // Fresh caches: what a newly started agent pays.
    const reopened = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
    const again = await reopened.vaults.openVault('v');
    const before = again.workCounters;
    expect((await again.stat('fixed')).modified?.commit).toBe(first);
    const after = again.workCounters;
    // Old code: every commit object (~900) and a tree lookup per commit and parent.
    expect(after.objectReads - before.objectReads).toBeLessThanOrEqual(10);
    expect(after.indexRecordReads - before.indexRecordReads).toBeLessThanOrEqual(300);
    const log = model.log(head);
    for (const path of ['a', 'b', 'fixed']) {
      expect((await again.log({ path })).map((c) => c.commit)).toEqual(log.filter((oid) => model.changes(oid, path)));
    }
    reopened.close();
  });
});
