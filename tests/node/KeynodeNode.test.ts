import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import { resolveNodePath } from '../../src/node/nodePath.js';
import { createTestNode, filesUnder, lockPresent, tempDir, TEST_KDF, TEST_PASSWORD } from '../helpers/index.js';

function snapshot(dir: string): Map<string, string> {
  return new Map(filesUnder(dir).map((f) => [path.relative(dir, f), fs.readFileSync(f).toString('base64')]));
}

describe('KeynodeNode', () => {
  it('creates a node whose id is a libp2p Ed25519 peer id, with private permissions', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    expect(node.nodeId).toMatch(/^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/);
    expect(recoveryPhrase.split(' ')).toHaveLength(24);
    expect(fs.statSync(nodePath).mode & 0o777).toBe(0o700);
    for (const file of filesUnder(nodePath)) expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const status = node.status();
    expect(status).toMatchObject({ nodeId: node.nodeId, vaultCount: 0, nodePath });
    expect(status.storeBytes).toBeGreaterThan(0);
    node.close();
    expect(lockPresent(nodePath)).toBe(false);
  });

  it('refuses to create over an existing node or into a non-empty directory', async () => {
    const { node, nodePath } = await createTestNode();
    node.close();
    await expect(KeynodeNode.create({ nodePath, password: 'x', kdf: TEST_KDF })).rejects.toMatchObject({ code: 'ERR_NODE_EXISTS' });
    const busy = tempDir();
    fs.writeFileSync(path.join(busy, 'notes.txt'), 'mine');
    await expect(KeynodeNode.create({ nodePath: busy, password: 'x', kdf: TEST_KDF })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('rejects a wrong password and changes nothing on disk', async () => {
    const { node, nodePath } = await createTestNode();
    await (await node.vaults.createVault('v')).writeSecret('s', Buffer.from('x'));
    node.close();
    const before = snapshot(nodePath);
    await expect(KeynodeNode.open({ nodePath, password: 'wrong' })).rejects.toMatchObject({ code: 'ERR_WRONG_PASSWORD' });
    await expect(KeynodeNode.open({ nodePath, password: '' })).rejects.toMatchObject({ code: 'ERR_PASSWORD_REQUIRED' });
    expect(snapshot(nodePath)).toEqual(before);
  });

  it('fails clearly for a missing node', async () => {
    await expect(KeynodeNode.open({ nodePath: path.join(tempDir(), 'none'), password: 'x' })).rejects.toMatchObject({ code: 'ERR_NODE_NOT_FOUND' });
  });

  it('lets only one process-level owner in at a time', async () => {
    const { node, nodePath } = await createTestNode();
    await expect(KeynodeNode.open({ nodePath, password: TEST_PASSWORD, lockWaitMs: 200 })).rejects.toMatchObject({ code: 'ERR_NODE_LOCKED' });
    node.close();
    (await KeynodeNode.open({ nodePath, password: TEST_PASSWORD })).close();
  });

  it('changes the password without touching the data', async () => {
    const { node, nodePath } = await createTestNode();
    await (await node.vaults.createVault('v')).writeSecret('s', Buffer.from('kept'));
    node.close();
    const store = fs.readFileSync(path.join(nodePath, 'store.log'));
    await KeynodeNode.changePassword({ nodePath, password: TEST_PASSWORD, newPassword: 'new pw' });
    expect(fs.readFileSync(path.join(nodePath, 'store.log')).equals(store)).toBe(true);
    await expect(KeynodeNode.open({ nodePath, password: TEST_PASSWORD })).rejects.toMatchObject({ code: 'ERR_WRONG_PASSWORD' });
    const reopened = await KeynodeNode.open({ nodePath, password: 'new pw' });
    expect((await (await reopened.vaults.openVault('v')).readSecret('s')).toString()).toBe('kept');
    reopened.close();
    await expect(KeynodeNode.changePassword({ nodePath, password: 'bad', newPassword: 'x' })).rejects.toMatchObject({ code: 'ERR_WRONG_PASSWORD' });
  });

  it('recovers an existing node from its phrase with a new password, data intact', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    const nodeId = node.nodeId;
    await (await node.vaults.createVault('v')).writeSecret('s', Buffer.from('still here'));
    node.close();
    const other = await createTestNode();
    other.node.close();
    await expect(KeynodeNode.recover({ nodePath, recoveryPhrase: other.recoveryPhrase, password: 'p', kdf: TEST_KDF })).rejects.toMatchObject({
      code: 'ERR_WRONG_PHRASE',
    });
    await expect(KeynodeNode.recover({ nodePath, recoveryPhrase: 'abandon '.repeat(24), password: 'p', kdf: TEST_KDF })).rejects.toMatchObject({
      code: 'ERR_INVALID_PHRASE',
    });
    const result = await KeynodeNode.recover({ nodePath, recoveryPhrase, password: 'forgot it', kdf: TEST_KDF });
    expect(result).toEqual({ nodeId, existing: true });
    const reopened = await KeynodeNode.open({ nodePath, password: 'forgot it' });
    expect(reopened.nodeId).toBe(nodeId);
    expect((await (await reopened.vaults.openVault('v')).readSecret('s')).toString()).toBe('still here');
    reopened.close();
  });

  it('rebuilds the same identity in an empty place from the phrase', async () => {
    const { node, recoveryPhrase } = await createTestNode();
    const nodeId = node.nodeId;
    node.close();
    const elsewhere = path.join(tempDir(), 'rebuilt');
    expect(await KeynodeNode.recover({ nodePath: elsewhere, recoveryPhrase, password: 'p', kdf: TEST_KDF })).toEqual({ nodeId, existing: false });
    const rebuilt = await KeynodeNode.open({ nodePath: elsewhere, password: 'p' });
    expect(rebuilt.nodeId).toBe(nodeId);
    rebuilt.close();
  });

  it('recover with the key file gone opens the existing store with the phrase and writes only a key file', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    await (await node.vaults.createVault('kept')).writeSecret('db/password', Buffer.from('s3cret'));
    node.close();
    fs.rmSync(path.join(nodePath, 'keynode.key'));
    const storeBefore = fs.readFileSync(path.join(nodePath, 'store.log'));
    // init must not touch it: the data is only a phrase away.
    await expect(KeynodeNode.create({ nodePath, password: 'x', kdf: TEST_KDF })).rejects.toMatchObject({ code: 'ERR_NODE_EXISTS' });
    // Another node's phrase is refused and changes nothing.
    const other = await createTestNode();
    other.node.close();
    await expect(KeynodeNode.recover({ nodePath, recoveryPhrase: other.recoveryPhrase, password: 'new', kdf: TEST_KDF })).rejects.toMatchObject({
      code: 'ERR_WRONG_PHRASE',
    });
    expect(fs.existsSync(path.join(nodePath, 'keynode.key'))).toBe(false);
    expect(fs.readFileSync(path.join(nodePath, 'store.log')).equals(storeBefore)).toBe(true);
    const result = await KeynodeNode.recover({ nodePath, recoveryPhrase, password: 'new password', kdf: TEST_KDF });
    expect(result).toEqual({ nodeId: node.nodeId, existing: true });
    expect(fs.readFileSync(path.join(nodePath, 'store.log')).equals(storeBefore)).toBe(true);
    const reopened = await KeynodeNode.open({ nodePath, password: 'new password' });
    expect((await (await reopened.vaults.openVault('kept')).readSecret('db/password')).toString()).toBe('s3cret');
    reopened.close();
  });

  it('init refuses a file as node path and leaves a non-empty directory exactly as it was', async () => {
    const busy = tempDir();
    fs.chmodSync(busy, 0o755);
    fs.writeFileSync(path.join(busy, 'notes.txt'), 'mine');
    await expect(KeynodeNode.create({ nodePath: busy, password: 'x', kdf: TEST_KDF })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(fs.statSync(busy).mode & 0o777).toBe(0o755);
    await expect(KeynodeNode.create({ nodePath: path.join(busy, 'notes.txt'), password: 'x', kdf: TEST_KDF })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
  });

  it('finishes an interrupted vault delete when the node next opens: the vault key leaves the file', async () => {
    const { node, nodePath } = await createTestNode();
    const doomed = await node.vaults.createVault('doomed');
    for (let i = 0; i < 5; i++) await doomed.writeSecret(`s${i}`, Buffer.from(`value-${i}`));
    await (await node.vaults.createVault('kept')).writeSecret('x', Buffer.from('y'));
    const recordsBefore = node.status().storeBytes;
    // Simulate a crash between the deleting batch and the compaction that follows it.
    // (A delete purges with the compaction in steps; opening a node with the synchronous one.)
    const store = (node as unknown as { store: { compactInSteps(): Promise<void> } }).store;
    const compactInSteps = store.compactInSteps.bind(store);
    store.compactInSteps = () => Promise.reject(Object.assign(new Error('no space'), { code: 'ENOSPC' }));
    expect(await node.vaults.deleteVault('doomed')).toEqual({ purged: false });
    store.compactInSteps = compactInSteps;
    expect(node.status().storeBytes).toBeGreaterThan(recordsBefore);
    node.close();
    const sizeBefore = fs.statSync(path.join(nodePath, 'store.log')).size;
    const reopened = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
    expect(reopened.vaults.hasVault('doomed')).toBe(false);
    expect(fs.statSync(path.join(nodePath, 'store.log')).size).toBeLessThan(sizeBefore / 2);
    expect((await (await reopened.vaults.openVault('kept')).readSecret('x')).toString()).toBe('y');
    expect((reopened.vaults as unknown as { purgePending: boolean }).purgePending).toBe(false);
    reopened.close();
  });

  it('is self-contained: a copied node directory opens elsewhere', async () => {
    const { node, nodePath } = await createTestNode();
    await (await node.vaults.createVault('usb')).writeSecret('k', Buffer.from('portable'));
    node.close();
    const copy = path.join(tempDir(), 'stick', 'node');
    fs.cpSync(nodePath, copy, { recursive: true });
    const opened = await KeynodeNode.open({ nodePath: copy, password: TEST_PASSWORD });
    expect((await (await opened.vaults.openVault('usb')).readSecret('k')).toString()).toBe('portable');
    opened.close();
  });

  it('resolves the node path from option, KEYNODE_PATH, XDG_DATA_HOME, then home', () => {
    expect(resolveNodePath('/x/y', { KEYNODE_PATH: '/a' })).toBe('/x/y');
    expect(resolveNodePath(undefined, { KEYNODE_PATH: '/a', XDG_DATA_HOME: '/d' })).toBe('/a');
    expect(resolveNodePath(undefined, { XDG_DATA_HOME: '/d' })).toBe('/d/keynode');
    expect(resolveNodePath(undefined, {})).toMatch(/\.local\/share\/keynode$/);
  });
});
