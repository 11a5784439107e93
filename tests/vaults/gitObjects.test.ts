import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import git from 'isomorphic-git';
import { encodeBlob, encodeCommit, encodeTree, parseTreeContent } from '../../src/vaults/gitObjects.js';
import type { TreeEntry } from '../../src/vaults/trees.js';

// isomorphic-git's own encoders, over an in-memory fs, are the reference.
function memoryFs() {
  const files = new Map<string, Uint8Array>();
  const enoent = () => Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  return {
    files,
    promises: {
      readFile: async (p?: string) => files.get(String(p)) ?? Promise.reject(enoent()),
      writeFile: async (p: string, d: Uint8Array) => void files.set(p, d),
      stat: async (p: string) => (files.has(p) ? { isFile: () => true } : Promise.reject(enoent())),
      lstat: async (p: string) => (files.has(p) ? { isFile: () => true } : Promise.reject(enoent())),
      mkdir: async () => {},
      rmdir: async () => {},
      unlink: async () => {},
      readdir: async () => [],
      readlink: async () => Promise.reject(enoent()),
      symlink: async () => {},
    },
  };
}

const oid = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex'));
const name = fc.stringMatching(/^[A-Za-z0-9_.\- äöü€]{1,12}$/).filter((s) => s !== '.' && s !== '..');

describe('git object encoding', () => {
  it('blobs match isomorphic-git for any bytes', async () => {
    const fs = memoryFs();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 1024 }), async (content) => {
        const mine = encodeBlob(content);
        expect(mine.oid).toBe(await git.writeBlob({ fs, gitdir: '/g', blob: content }));
        expect(mine.wrapped.equals(Buffer.concat([Buffer.from(`blob ${content.length}\0`), content]))).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('trees match isomorphic-git, including directory ordering', async () => {
    const fs = memoryFs();
    const entries = fc.uniqueArray(fc.tuple(name, fc.boolean(), oid), { selector: ([n]) => n, maxLength: 20 });
    await fc.assert(
      fc.asyncProperty(entries, async (list) => {
        const map = new Map<string, TreeEntry>(
          list.map(([n, isTree, o]) => [n, { mode: isTree ? '040000' : '100644', type: isTree ? 'tree' : 'blob', oid: o }]),
        );
        const reference = await git.writeTree({
          fs,
          gitdir: '/g',
          tree: list.map(([n, isTree, o]) => ({ path: n, mode: isTree ? '040000' : '100644', type: isTree ? 'tree' : 'blob', oid: o })),
        });
        expect(encodeTree(map).oid).toBe(reference);
      }),
      { numRuns: 100 },
    );
  });

  it('parses trees back exactly, as isomorphic-git reads them (property)', async () => {
    const fs = memoryFs();
    const entries = fc.uniqueArray(fc.tuple(name, fc.boolean(), oid), { selector: ([n]) => n, maxLength: 20 });
    await fc.assert(
      fc.asyncProperty(entries, async (list) => {
        const map = new Map<string, TreeEntry>(
          list.map(([n, isTree, o]) => [n, { mode: isTree ? '040000' : '100644', type: isTree ? 'tree' : 'blob', oid: o }]),
        );
        const encoded = encodeTree(map);
        const content = encoded.wrapped.subarray(encoded.wrapped.indexOf(0) + 1);
        expect(parseTreeContent(content)).toEqual(map);
        // isomorphic-git, reading the same object, sees the same entries.
        const reference = await git.writeTree({
          fs,
          gitdir: '/g',
          tree: list.map(([n, isTree, o]) => ({ path: n, mode: isTree ? '040000' : '100644', type: isTree ? 'tree' : 'blob', oid: o })),
        });
        const { tree } = await git.readTree({ fs, gitdir: '/g', oid: reference });
        expect(new Map(tree.map((e) => [e.path, { mode: e.mode, type: e.type, oid: e.oid }]))).toEqual(map);
      }),
      { numRuns: 100 },
    );
    expect(parseTreeContent(Buffer.from('100644 truncated'))).toBeNull();
  });

  it('commits match isomorphic-git', async () => {
    const fs = memoryFs();
    await fc.assert(
      fc.asyncProperty(
        oid,
        fc.array(oid, { maxLength: 2 }),
        fc.string({ minLength: 1, maxLength: 80 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        async (tree, parents, message, timestamp) => {
          const author = { name: '12D3KooWTest', email: '12D3KooWTest@keynode', timestamp };
          const reference = await git.writeCommit({
            fs,
            gitdir: '/g',
            commit: {
              tree,
              parent: parents,
              author: { ...author, timezoneOffset: 0 },
              committer: { ...author, timezoneOffset: 0 },
              message: message.endsWith('\n') ? message : message + '\n',
            },
          });
          expect(encodeCommit({ tree, parents, author, message }).oid).toBe(reference);
        },
      ),
      { numRuns: 100 },
    );
  });
});
