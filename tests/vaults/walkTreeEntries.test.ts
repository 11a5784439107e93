import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BLOB_MODE, CompactTree, TREE_MODE, TreeCache, walkTree, walkTreeEntries, walkTreePages, type TreeEntry } from '../../src/vaults/trees.js';

const BLOB = '0'.repeat(40);

/** Store the trees of a set of paths (a path that is a prefix of another is a directory); the root's id. */
function buildTrees(paths: string[], store: Map<string, CompactTree>): string {
  const build = (prefix: string): string => {
    const children = new Map<string, TreeEntry>();
    const names = new Set(paths.filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length).split('/')[0]!));
    for (const name of names) {
      const isDir = paths.some((p) => p.startsWith(`${prefix}${name}/`));
      children.set(name, isDir ? { mode: TREE_MODE, type: 'tree', oid: build(`${prefix}${name}/`) } : { mode: BLOB_MODE, type: 'blob', oid: BLOB });
    }
    const tree = CompactTree.fromEntries(children);
    const oid = tree.oid();
    store.set(oid, tree);
    return oid;
  };
  return build('');
}

async function collect(walk: AsyncIterable<{ path: string; entry: TreeEntry }>): Promise<string[]> {
  const out: string[] = [];
  for await (const { path, entry } of walk) out.push(`${path}:${entry.type}`);
  return out;
}

describe('walkTreeEntries', () => {
  // Names around '/' in git's order: "a" as a tree sorts after "a-b", "a.c", "a!" there, before them by name.
  const segment = fc.string({ unit: fc.constantFrom('a', 'b', '-', '.', '!', ' ', '0', 'z'), minLength: 1, maxLength: 4 });
  const pathArb = fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/'));

  it('visits what walkTree visits, in the same order, whether a directory is sorted whole or walked in place', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(pathArb, { minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 7 }), async (raw, pageEntries) => {
        // A path may not be both a secret and a directory.
        const paths = raw.filter((p) => !raw.some((q) => q.startsWith(`${p}/`)));
        const store = new Map<string, CompactTree>();
        const root = buildTrees(paths, store);
        const cache = new TreeCache(async (oid) => ({ tree: store.get(oid)! }));
        const expected: string[] = [];
        await walkTree(cache, root, '', (path, entry) => void expected.push(`${path}:${entry.type}`));
        expect(await collect(walkTreeEntries(cache, root, '', 0))).toEqual(expected);
        expect(await collect(walkTreeEntries(cache, root, ''))).toEqual(expected);
        // In pages of any size: the same entries, no page empty or over the size.
        const pages: string[][] = [];
        for await (const page of walkTreePages(cache, root, '', { pageEntries, sortWholeMaxEntries: pageEntries % 2 === 0 ? 0 : 4_096 })) {
          pages.push(page.map(({ path, entry }) => `${path}:${entry.type}`));
        }
        expect(pages.flat()).toEqual(expected);
        expect(pages.every((page) => page.length > 0 && page.length <= pageEntries)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('walks a large directory in place, a tree before the names it prefixes', async () => {
    const names = Array.from({ length: 20_000 }, (_, i) => `s${String(i).padStart(6, '0')}`);
    const sub = CompactTree.fromEntries([['x', { mode: BLOB_MODE, type: 'blob', oid: BLOB }]]);
    const entries = new Map<string, TreeEntry>(names.map((name) => [name, { mode: BLOB_MODE, type: 'blob', oid: BLOB }]));
    entries.set('s000005', { mode: TREE_MODE, type: 'tree', oid: sub.oid() }); // git puts it after "s000005-..." names
    entries.set('s000005-a', { mode: BLOB_MODE, type: 'blob', oid: BLOB });
    const root = CompactTree.fromEntries(entries);
    const store = new Map([
      [root.oid(), root],
      [sub.oid(), sub],
    ]);
    const cache = new TreeCache(async (oid) => ({ tree: store.get(oid)! }));
    const first: string[] = [];
    for await (const { path } of walkTreeEntries(cache, root.oid(), '')) {
      first.push(path);
      if (first.length === 9) break;
    }
    expect(first).toEqual(['s000000', 's000001', 's000002', 's000003', 's000004', 's000005', 's000005/x', 's000005-a', 's000006']);
  });
});
