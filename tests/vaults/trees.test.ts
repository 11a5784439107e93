import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodeTree, parseTreeContent } from '../../src/vaults/gitObjects.js';
import { CompactTree, TreeCache, treeCounters, type TreeEntry } from '../../src/vaults/trees.js';

const oidOf = (n: number) => n.toString(16).padStart(40, '0');
const blob = (n: number): TreeEntry => ({ mode: '100644', type: 'blob', oid: oidOf(n) });
const dir = (n: number): TreeEntry => ({ mode: '040000', type: 'tree', oid: oidOf(n) });

/** Names around git's ordering traps: '/' sorts after '-' and '.', so "a" (tree) follows "a-b". */
const name = fc
  .oneof(fc.constantFrom('a', 'a-b', 'a.b', 'a0', 'ab', 'b', 'é', 'zz', 'a b', '\u00ff'), fc.stringMatching(/^[a-z0-9._-]{1,6}$/))
  .filter((s) => s !== '.' && s !== '..');
const entry = fc.tuple(fc.boolean(), fc.nat(1000)).map(([tree, n]) => (tree ? dir(n) : blob(n)));

function treeOf(entries: Map<string, TreeEntry>): CompactTree {
  return CompactTree.fromEntries(entries);
}

describe('CompactTree', () => {
  it('encodes, hashes and looks up exactly like the Map encoder, through any sequence of changes (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.tuple(name, fc.option(entry, { nil: null })), { maxLength: 30 }), { minLength: 1, maxLength: 8 }), (rounds) => {
        const model = new Map<string, TreeEntry>();
        let tree = CompactTree.EMPTY;
        for (const round of rounds) {
          const changes = new Map(round);
          tree = tree.with(changes).tree;
          for (const [key, value] of changes) {
            if (value) model.set(key, value);
            else model.delete(key);
          }
          const reference = encodeTree(model);
          expect(tree.oid()).toBe(reference.oid);
          expect(tree.wrapped().equals(reference.wrapped)).toBe(true);
          expect(tree.size).toBe(model.size);
          for (const [key, value] of model) expect(tree.get(key)).toEqual(value);
          expect(new Map(tree)).toEqual(model);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('large trees (a binary search per change) and bulk changes (one merge pass) agree with the Map encoder (property)', () => {
    const base = new Map<string, TreeEntry>(Array.from({ length: 3_000 }, (_, i) => [`${['a', 'a-', 'a.', 'b', 'é'][i % 5]}${i}`, i % 3 ? blob(i) : dir(i)]));
    const baseTree = treeOf(base);
    const existing = [...base.keys()];
    const changeName = fc.oneof(name, fc.constantFrom(...existing));
    fc.assert(
      fc.property(fc.array(fc.tuple(changeName, fc.option(entry, { nil: null })), { minLength: 1, maxLength: 200 }), (list) => {
        const changes = new Map(list);
        const model = new Map(base);
        for (const [key, value] of changes) {
          if (value) model.set(key, value);
          else model.delete(key);
        }
        const next = baseTree.with(changes).tree;
        expect(next.oid()).toBe(encodeTree(model).oid);
        for (const key of changes.keys()) expect(next.get(key)).toEqual(model.get(key));
      }),
      { numRuns: 60 },
    );
  });

  it('parses canonical content back to the same tree, and canonicalises unsorted content', () => {
    const model = new Map([...Array.from({ length: 1000 }, (_, i): [string, TreeEntry] => [`s${i}`, blob(i)]), ['d', dir(7)]]);
    const encoded = encodeTree(model);
    const parsed = CompactTree.parse(encoded.wrapped.subarray(encoded.wrapped.indexOf(0) + 1))!;
    expect(parsed.oid()).toBe(encoded.oid);
    expect(new Map(parsed)).toEqual(parseTreeContent(encoded.wrapped.subarray(encoded.wrapped.indexOf(0) + 1)));
    const unsorted = Buffer.concat([Buffer.from('100644 b\0'), Buffer.alloc(20, 1), Buffer.from('100644 a\0'), Buffer.alloc(20, 2)]);
    expect([...CompactTree.parse(unsorted)!.keys()]).toEqual(['a', 'b']);
    expect(CompactTree.parse(Buffer.from('100644 truncated'))).toBeNull();
  });

  it('does not find names that are not one segment', () => {
    const tree = treeOf(new Map([['a', dir(1)]]));
    expect(tree.get('a')).toEqual(dir(1));
    expect(tree.get('a/')).toBeUndefined();
    expect(tree.get('')).toBeUndefined();
  });

  it('a change in a large tree copies one chunk, not the tree', () => {
    const big = treeOf(new Map(Array.from({ length: 50_000 }, (_, i): [string, TreeEntry] => [`secret-${String(i).padStart(6, '0')}`, blob(i)])));
    const before = treeCounters.entriesWritten;
    const next = big.with(
      new Map([
        ['secret-025000', blob(999_999)],
        ['new-name', blob(1)],
      ]),
    ).tree;
    expect(treeCounters.entriesWritten - before).toBeLessThanOrEqual(2 * 2 * 256);
    expect(next.size).toBe(50_001);
    expect(next.get('secret-025000')).toEqual(blob(999_999));
    expect(big.get('secret-025000')).toEqual(blob(25_000));
  });
});

describe('TreeCache', () => {
  const sized = (entries: number) => treeOf(new Map(Array.from({ length: entries }, (_, i): [string, TreeEntry] => [`n${i}`, blob(i)])));

  it('is bounded by bytes and evicts the least recently used tree, one at a time', async () => {
    const trees = new Map([...'abcde'].map((id) => [id, sized(100)]));
    const loads: string[] = [];
    const one = trees.get('a')!.bytes;
    const cache = new TreeCache(async (oid) => {
      loads.push(oid);
      return { tree: trees.get(oid)! };
    }, one * 3);
    for (const id of ['a', 'b', 'c']) await cache.get(id);
    await cache.get('a'); // a is now the most recently used
    await cache.get('d'); // evicts b only
    expect(cache.bytes).toBeLessThanOrEqual(one * 3);
    expect(['a', 'b', 'c', 'd'].map((id) => cache.has(id))).toEqual([true, false, true, true]);
    loads.length = 0;
    for (const id of ['a', 'c', 'd']) await cache.get(id);
    expect(loads).toEqual([]);
  });

  it('keeps a tree larger than the budget in its own slot without evicting the others', async () => {
    const small = sized(10);
    const huge = sized(5_000);
    const cache = new TreeCache(async (oid) => ({ tree: oid.startsWith('huge') ? huge : small }), small.bytes * 4);
    for (const id of ['s1', 's2', 's3']) await cache.get(id);
    await cache.get('huge1');
    expect(['s1', 's2', 's3', 'huge1'].every((id) => cache.has(id))).toBe(true);
    await cache.get('huge2'); // replaces the previous oversize tree only
    expect(['s1', 's2', 's3', 'huge2'].every((id) => cache.has(id))).toBe(true);
    expect(cache.has('huge1')).toBe(false);
    expect(cache.bytes).toBeLessThanOrEqual(small.bytes * 4);
  });
});
