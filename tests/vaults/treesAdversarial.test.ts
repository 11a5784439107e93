import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CompactTree, TreeCache, TreeCacheBudget, type TreeEntry, type TreeRecordInfo } from '../../src/vaults/trees.js';
import { TREE_CACHE_MAX_BYTES } from '../../src/constants.js';
import { loadStoredTree, writeStoredTree } from '../../src/vaults/treeStore.js';

/**
 * Adversarial names against an independent model of git's tree order: entries sorted by their
 * UTF-8 bytes, a directory compared as its name plus '/'. Names mix code points where UTF-16
 * and UTF-8 orders part (U+E000 and above, astral), prefixes of each other around '/' ('-', '.',
 * '0') and a secret and a directory of adjacent names; trees cross the 256-entry chunk size.
 */
const oidOf = (n: number) => createHash('sha1').update(String(n)).digest('hex');
const key = (name: string, entry: TreeEntry) => Buffer.concat([Buffer.from(name, 'utf8'), entry.type === 'tree' ? Buffer.from('/') : Buffer.alloc(0)]);

function canonical(model: ReadonlyMap<string, TreeEntry>): Buffer {
  const sorted = [...model].sort(([a, x], [b, y]) => Buffer.compare(key(a, x), key(b, y)));
  const content = Buffer.concat(
    sorted.map(([name, entry]) =>
      Buffer.concat([Buffer.from(`${entry.type === 'tree' ? '40000' : entry.mode.replace(/^0+/, '')} ${name}\0`, 'utf8'), Buffer.from(entry.oid, 'hex')]),
    ),
  );
  return Buffer.concat([Buffer.from(`tree ${content.length}\0`), content]);
}

const stems = [
  'a',
  'a.b',
  'a-b',
  'a0',
  'a b',
  'ab',
  'b',
  '\u00e9',
  '\uE000',
  '\uFFFD',
  '\uFF61',
  '\u{1F600}',
  '\u{10000}',
  'a\u{1F600}',
  'a\uE000',
  'a\uFFFF'.slice(0, 1) + 'x',
];
const name = fc.oneof(
  fc.constantFrom(...stems),
  fc.tuple(fc.constantFrom(...stems), fc.integer({ min: 0, max: 600 })).map(([s, n]) => `${s}${n}`),
);
const entry = fc
  .tuple(fc.boolean(), fc.integer({ min: 0, max: 50 }))
  .map(([tree, n]): TreeEntry =>
    tree ? { mode: '040000', type: 'tree', oid: oidOf(n) } : { mode: n % 5 === 0 ? '100755' : '100644', type: 'blob', oid: oidOf(n) },
  );
const change = fc.tuple(name, fc.option(entry, { freq: 3 }));

describe('CompactTree and tree deltas under hostile names', () => {
  it('match git byte order, through chunk boundaries, bulk and single changes, and delta chains (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 700 }),
        fc.array(fc.array(change, { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 12 }),
        (initial, steps) => {
          const model = new Map<string, TreeEntry>();
          for (let i = 0; i < initial; i++)
            model.set(
              `${stems[i % stems.length]}${i}`,
              i % 9 === 0 ? { mode: '040000', type: 'tree', oid: oidOf(i) } : { mode: '100644', type: 'blob', oid: oidOf(i) },
            );
          const stored = new Map<string, Buffer>();
          const known = new Map<string, TreeRecordInfo>();
          const write = (baseOid: string | null, base: CompactTree, changes: Map<string, TreeEntry | null>) => {
            const written = writeStoredTree({
              edit: { baseOid, base, changes },
              hasRecord: (oid) => stored.has(oid),
              readRecord: (oid) => stored.get(oid),
              putRecord: (oid, record) => stored.set(oid, record),
              knownRecord: (oid) => known.get(oid),
            });
            if (written.record) known.set(written.oid, written.record);
            return written;
          };
          let { oid, tree } = write(null, CompactTree.EMPTY, new Map(model));
          expect(tree.wrapped().equals(canonical(model))).toBe(true);
          const versions: Array<[string, Buffer]> = [[oid, canonical(model)]];
          for (const step of steps) {
            const changes = new Map<string, TreeEntry | null>(step);
            for (const [n, e] of changes) {
              if (e) model.set(n, e);
              else model.delete(n);
            }
            ({ oid, tree } = write(oid, tree, changes));
            const expected = canonical(model);
            expect(tree.wrapped().equals(expected)).toBe(true);
            expect(tree.size).toBe(model.size);
            for (const [n, e] of model) expect(tree.get(n)).toEqual(e);
            versions.push([oid, expected]);
          }
          // Every version rebuilds from its stored chain, uncached, to the same bytes.
          for (const [id, expected] of versions)
            expect(
              loadStoredTree({ oid: id, readRecord: (r) => stored.get(r) })
                .tree.wrapped()
                .equals(expected),
            ).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('TreeCache memory across vaults', () => {
  it('the caches of many vaults together stay within one budget (plus one oversize tree)', async () => {
    // One ~1.5 MB tree loaded under many ids: what reading many big trees costs in accounting.
    const big = CompactTree.fromEntries(
      Array.from({ length: 30_000 }, (_, i): [string, TreeEntry] => [`n${i}`, { mode: '100644', type: 'blob', oid: oidOf(i) }]),
    );
    const perVault = Math.ceil((TREE_CACHE_MAX_BYTES / big.bytes) * 0.8);
    // Each vault makes its cache as Vault does: no budget named.
    const caches = Array.from({ length: 4 }, () => new TreeCache(async () => ({ tree: big })));
    for (const cache of caches) for (let i = 0; i < perVault; i++) await cache.get(oidOf(i));
    const held = caches.reduce((sum, cache) => sum + cache.bytes, 0);
    expect(held).toBeGreaterThan(TREE_CACHE_MAX_BYTES / 2);
    expect(held).toBeLessThanOrEqual(TREE_CACHE_MAX_BYTES);
    // The least recently used went first: the last vault's trees are all still there.
    expect(Array.from({ length: perVault }, (_, i) => caches[3]!.has(oidOf(i))).every(Boolean)).toBe(true);
    expect(caches[0]!.has(oidOf(0))).toBe(false);
    // Reading a tree keeps it: touch vault 0's newest, load more in vault 3, it survives.
    await caches[0]!.get(oidOf(perVault - 1));
    const survivor = caches[0]!.has(oidOf(perVault - 1));
    for (let i = perVault; i < perVault + 5; i++) await caches[3]!.get(oidOf(i));
    expect(survivor && caches[0]!.has(oidOf(perVault - 1))).toBe(true);
  });

  it('one tree larger than the budget is held beside it, for all caches together', async () => {
    const small = CompactTree.fromEntries([['x', { mode: '100644', type: 'blob', oid: oidOf(1) }]]);
    const huge = CompactTree.fromEntries(
      Array.from({ length: 2_000 }, (_, i): [string, TreeEntry] => [`n${i}`, { mode: '100644', type: 'blob', oid: oidOf(i) }]),
    );
    const budget = new TreeCacheBudget(small.bytes * 4);
    const load = async (oid: string) => ({ tree: oid.startsWith('huge') ? huge : small });
    const [a, b] = [new TreeCache(load, budget), new TreeCache(load, budget)];
    await a.get('huge-a');
    await b.get('huge-b');
    expect([a.has('huge-a'), b.has('huge-b')]).toEqual([false, true]);
    expect(a.bytes + b.bytes).toBe(0);
  });
});
