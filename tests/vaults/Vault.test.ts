import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isKeynodeError, type ErrorCode } from '../../src/errors.js';
import { createTestNode } from '../helpers/index.js';

async function freshVault() {
  const { node } = await createTestNode();
  const vault = await node.vaults.createVault('v');
  return { node, vault };
}

async function codeOf(promise: Promise<unknown>): Promise<ErrorCode | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    if (!isKeynodeError(error)) throw error;
    return error.code;
  }
}

const segment = fc.stringMatching(/^[A-Za-z0-9_\-@]{1,8}$/);

describe('Vault', () => {
  it('round-trips any bytes at any valid path (property)', async () => {
    const { node, vault } = await freshVault();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.uint8Array({ maxLength: 4096 }), async (segments, value) => {
        const path = [`case${run++}`, ...segments].join('/'); // a fresh subtree per case
        await vault.writeSecret(path, value);
        expect((await vault.readSecret(path)).equals(Buffer.from(value))).toBe(true);
      }),
      { numRuns: 60 },
    );
    node.close();
  });

  it('stores a 10 MB binary value byte for byte', async () => {
    const { node, vault } = await freshVault();
    const big = Buffer.alloc(10 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    await vault.writeSecret('certs/big.bin', big);
    expect((await vault.readSecret('certs/big.bin')).equals(big)).toBe(true);
    node.close();
  });

  it('makes one commit per change, authored by the node, with history readable', async () => {
    const { node, vault } = await freshVault();
    const first = await vault.writeSecret('db/password', Buffer.from('one'));
    await vault.writeSecret('db/password', Buffer.from('two'), { message: 'rotate' });
    await vault.writeSecret('api/key', Buffer.from('k'));
    const log = await vault.log();
    expect(log.map((c) => c.message)).toEqual(['set api/key', 'rotate', 'set db/password', 'create vault']);
    expect(log[0]!.author).toBe(node.nodeId);
    expect((await vault.log({ path: 'db/password' })).map((c) => c.message)).toEqual(['rotate', 'set db/password']);
    expect((await vault.readSecret('db/password', { version: first.commit })).toString()).toBe('one');
    expect((await vault.readSecret('db/password', { version: first.commit.slice(0, 7) })).toString()).toBe('one');
    expect((await vault.readSecret('db/password', { version: 'HEAD~1' })).toString()).toBe('two');
    expect(await codeOf(vault.readSecret('api/key', { version: first.commit }))).toBe('ERR_SECRET_NOT_FOUND');
    expect(await codeOf(vault.readSecret('db/password', { version: 'deadbeef' }))).toBe('ERR_COMMIT_NOT_FOUND');
    expect(await codeOf(vault.readSecret('db/password', { version: 'HEAD~99' }))).toBe('ERR_COMMIT_NOT_FOUND');
    node.close();
  });

  it('does not commit a change that changes nothing', async () => {
    const { node, vault } = await freshVault();
    await vault.writeSecret('a', Buffer.from('same'));
    const again = await vault.writeSecret('a', Buffer.from('same'));
    expect(again.changed).toBe(false);
    expect(await vault.log()).toHaveLength(2);
    node.close();
  });

  it('lists, removes, moves, copies and makes directories', async () => {
    const { node, vault } = await freshVault();
    await vault.writeSecrets([
      { path: 'a/x', value: Buffer.from('1') },
      { path: 'a/y', value: Buffer.from('2') },
      { path: 'b', value: Buffer.from('3') },
    ]);
    expect(await vault.list()).toEqual([
      { path: 'a', type: 'dir' },
      { path: 'a/x', type: 'secret' },
      { path: 'a/y', type: 'secret' },
      { path: 'b', type: 'secret' },
    ]);
    expect(await vault.list('a', { recursive: false })).toEqual([
      { path: 'a/x', type: 'secret' },
      { path: 'a/y', type: 'secret' },
    ]);
    expect(await codeOf(vault.remove('a'))).toBe('ERR_IS_A_DIRECTORY');
    await vault.copy('a', 'c');
    await vault.move('b', 'c'); // into the directory
    expect((await vault.readSecret('c/b')).toString()).toBe('3');
    expect(await codeOf(vault.move('a/x', 'a/y'))).toBe('ERR_PATH_EXISTS');
    await vault.move('a/x', 'a/y', { overwrite: true });
    expect((await vault.readSecret('a/y')).toString()).toBe('1');
    expect(await codeOf(vault.move('a', 'a/sub'))).toBe('ERR_INVALID_PATH');
    await vault.remove('a', { recursive: true });
    await vault.makeDir('empty/nested');
    expect(await vault.list()).toEqual([
      { path: 'c', type: 'dir' },
      { path: 'c/b', type: 'secret' },
      { path: 'c/x', type: 'secret' },
      { path: 'c/y', type: 'secret' },
      { path: 'empty', type: 'dir' },
      { path: 'empty/nested', type: 'dir' },
    ]);
    expect(await codeOf(vault.writeSecret('c', Buffer.from('x')))).toBe('ERR_IS_A_DIRECTORY');
    expect(await codeOf(vault.writeSecret('c/b/deeper', Buffer.from('x')))).toBe('ERR_NOT_A_DIRECTORY');
    expect(await codeOf(vault.readSecret('c'))).toBe('ERR_IS_A_DIRECTORY');
    expect(await codeOf(vault.remove('nope'))).toBe('ERR_SECRET_NOT_FOUND');
    const stat = await vault.stat('c/b');
    expect(stat).toMatchObject({ path: 'c/b', type: 'secret', size: 1 });
    expect(stat.modified?.message).toBe('move b to c');
    node.close();
  });

  it('diffs versions, with values only when asked', async () => {
    const { node, vault } = await freshVault();
    await vault.writeSecrets([
      { path: 'keep', value: Buffer.from('k') },
      { path: 'change', value: Buffer.from('old') },
      { path: 'gone/x', value: Buffer.from('g') },
    ]);
    const before = vault.headCommit;
    await vault.writeSecret('change', Buffer.from('new'));
    await vault.remove('gone', { recursive: true });
    await vault.writeSecret('added/y', Buffer.from('a'));
    const changes = await vault.diff(before, 'HEAD');
    expect(changes).toEqual([
      { path: 'added/y', status: 'added' },
      { path: 'change', status: 'modified' },
      { path: 'gone/x', status: 'removed' },
    ]);
    const withValues = await vault.diff(before, 'HEAD', { values: true });
    expect(withValues[1]!.before?.toString()).toBe('old');
    expect(withValues[1]!.after?.toString()).toBe('new');
    node.close();
  });

  it('reverts by adding a commit, never rewriting history', async () => {
    const { node, vault } = await freshVault();
    await vault.writeSecret('x', Buffer.from('1'));
    const good = vault.headCommit;
    await vault.writeSecret('x', Buffer.from('2'));
    await vault.writeSecret('y', Buffer.from('3'));
    const result = await vault.revert(good);
    expect(result.changed).toBe(true);
    expect((await vault.readSecret('x')).toString()).toBe('1');
    expect(await vault.exists('y')).toBe(false);
    const log = await vault.log();
    expect(log).toHaveLength(5);
    expect(log[0]!.message).toBe(`revert to ${good.slice(0, 12)}`);
    expect((await vault.readSecret('y', { version: 'HEAD~1' })).toString()).toBe('3');
    expect((await vault.revert(good)).changed).toBe(false);
    node.close();
  });

  it('serialises concurrent writers: no update is lost', async () => {
    const { node, vault } = await freshVault();
    await Promise.all(Array.from({ length: 50 }, (_, i) => vault.writeSecret(`w/${i}`, Buffer.from(String(i)))));
    expect((await vault.list('w')).length).toBe(50);
    expect(await vault.log()).toHaveLength(51);
    node.close();
  });

  it('keeps a failed change out entirely (nothing half-applied)', async () => {
    const { node, vault } = await freshVault();
    await vault.writeSecret('a', Buffer.from('1'));
    const head = vault.headCommit;
    expect(
      await codeOf(
        vault.applyEdits(
          [
            { path: 'b', value: Buffer.from('2') },
            { path: 'missing', delete: true },
          ],
          'bad',
        ),
      ),
    ).toBe('ERR_SECRET_NOT_FOUND');
    expect(vault.headCommit).toBe(head);
    expect(await vault.exists('b')).toBe(false);
    node.close();
  });
});

describe('Vault instances', () => {
  it('concurrent first opens share one instance, so concurrent writers lose nothing', async () => {
    const { node } = await createTestNode();
    await node.vaults.createVault('shared');
    node.close();
    const { KeynodeNode } = await import('../../src/node/KeynodeNode.js');
    const { TEST_PASSWORD } = await import('../helpers/index.js');
    const reopened = await KeynodeNode.open({ nodePath: (node as unknown as { nodePath: string }).nodePath, password: TEST_PASSWORD });
    // Many writers that each open the vault themselves, all at once.
    await Promise.all(Array.from({ length: 20 }, async (_, i) => (await reopened.vaults.openVault('shared')).writeSecret(`k${i}`, Buffer.from(String(i)))));
    const vault = await reopened.vaults.openVault('shared');
    expect((await vault.list()).length).toBe(20);
    expect(await vault.log()).toHaveLength(21);
    reopened.close();
  });
});
