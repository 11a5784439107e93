import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { phraseToMasterSecret } from '../../src/crypto/recoveryPhrase.js';
import { NodeKeys } from '../../src/keys/NodeKeys.js';
import type { CheckReport } from '../../src/node/check.js';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import { Keyspace } from '../../src/storage/Keyspace.js';
import { LogStore } from '../../src/storage/LogStore.js';
import { encodeBlob, encodeCommit, encodeTree } from '../../src/vaults/gitObjects.js';
import { createTestNode, TEST_PASSWORD } from '../helpers/index.js';

/**
 * Damage is injected with the node closed, through the store itself (opened from the recovery
 * phrase, as a tool with the keys would) or by flipping bytes of store.log, then the node is
 * opened again and checked.
 */
async function rawStore(nodePath: string, recoveryPhrase: string) {
  const keys = new NodeKeys(phraseToMasterSecret(recoveryPhrase)!);
  const store = LogStore.open(nodePath, keys.storeBatchKey);
  const nodeKeyspace = new Keyspace(keys.nodeKeyspaceSecret);
  const registry = JSON.parse(store.get(nodeKeyspace, 'vault-registry')!.toString('utf8')).vaults as Array<{ name: string; key: string }>;
  const vaultKeyspace = (name: string) => new Keyspace(Buffer.from(registry.find((v) => v.name === name)!.key, 'base64'));
  /** Object ids of a commit's tree and parents, read from the store. */
  const commitOf = (keyspace: Keyspace, oid: string) => {
    const text = store.get(keyspace, `obj/${oid}`)!.toString('utf8');
    return { tree: /tree ([0-9a-f]{40})\n/.exec(text)![1]!, parents: [...text.matchAll(/\nparent ([0-9a-f]{40})/g)].map((m) => m[1]!) };
  };
  const head = (keyspace: Keyspace) => store.get(keyspace, 'head')!.toString('ascii');
  return { store, nodeKeyspace, vaultKeyspace, commitOf, head };
}

/** Rewrite a record with its own value (so it is the log's last batch), then flip a byte in the middle of that batch: inside the sealed value. */
function damageRecord(nodePath: string, raw: Awaited<ReturnType<typeof rawStore>>, keyspace: Keyspace, name: string): void {
  const value = raw.store.get(keyspace, name)!;
  expect(value.length, 'big enough that the middle of its batch is ciphertext').toBeGreaterThan(300);
  const file = path.join(nodePath, 'store.log');
  const before = fs.statSync(file).size;
  raw.store.write([{ keyspace, name, value }]);
  raw.store.close();
  const bytes = fs.readFileSync(file);
  bytes[before + Math.floor((bytes.length - before) / 2)]! ^= 0x01;
  fs.writeFileSync(file, bytes);
}

async function checkNode(nodePath: string): Promise<CheckReport> {
  const node = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
  try {
    return await node.check();
  } finally {
    node.close();
  }
}

const kinds = (report: CheckReport) => report.problems.map((p) => p.kind).sort();
const BIG = Buffer.alloc(1000, 'secret-bytes ');

describe('keynode check', () => {
  it('counts every object of a small vault exactly and finds nothing wrong', async () => {
    const { node } = await createTestNode();
    const vault = await node.vaults.createVault('small');
    await vault.writeSecret('a', Buffer.from('1')); // commit 2: root {a}
    await vault.writeSecret('dir/b', Buffer.from('2')); // commit 3: root {a, dir}, dir {b}
    const report = await node.check();
    node.close();
    // commits: create + 2; trees: empty, {a}, {a,dir}, {b}; blobs: 1, 2
    expect(report.objects).toEqual({ commits: 3, trees: 4, blobs: 2 });
    expect(report).toMatchObject({ ok: true, vaults: 1, orphans: 0, problems: [] });
    // node-info, registry, the vault's head and its 9 objects, and its history index: the index
    // head, a record and a prefix bucket per commit, a path record each for a, dir/b and dir
    expect(report.records).toBe(22);
  });

  it('a busy node (vaults, tags, renames, moves, deletes, reverts, a deleted vault) has no problems and no orphans', async () => {
    const { node, nodePath } = await createTestNode();
    const prod = await node.vaults.createVault('prod');
    for (let i = 0; i < 60; i++) await prod.writeSecret(`app${i % 4}/key-${i % 7}`, Buffer.from(`value ${i}`));
    await prod.move('app1', 'moved/app1');
    await prod.copy('app2/key-2', 'copied');
    await prod.makeDir('empty/dir');
    await prod.remove('app3', { recursive: true });
    await prod.revert('HEAD~5');
    await node.vaults.tagVault('prod', 'live');
    const dev = await node.vaults.createVault('dev');
    await dev.writeSecrets(Array.from({ length: 20 }, (_, i) => ({ path: `s/${i}`, value: Buffer.from(`dev ${i}`) })));
    await dev.remove('s', { recursive: true }); // back to the empty tree
    await node.vaults.renameVault('dev', 'development');
    const gone = await node.vaults.createVault('gone');
    await gone.writeSecret('x', Buffer.from('soon deleted'));
    await node.vaults.deleteVault('gone');
    await node.vaults.createVault('fresh');
    const report = await node.check();
    node.close();
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, vaults: 3, orphans: 0 });
    expect(report.objects.commits).toBe(1 + 60 + 5 + 1 + 2 + 1);
    // Checked again from disk by a fresh process-like open: same result.
    expect((await checkNode(nodePath)).problems).toEqual([]);
  });

  it('reports a record whose bytes were flipped in store.log as damaged-record, naming vault and path, and checks the rest', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    const vault = await node.vaults.createVault('prod');
    await vault.writeSecret('db/password', BIG);
    await vault.writeSecret('other', Buffer.from('fine'));
    await (await node.vaults.createVault('second')).writeSecret('x', Buffer.from('y'));
    node.close();
    const raw = await rawStore(nodePath, recoveryPhrase);
    damageRecord(nodePath, raw, raw.vaultKeyspace('prod'), `obj/${encodeBlob(BIG).oid}`);
    const report = await checkNode(nodePath);
    expect(kinds(report)).toEqual(['damaged-record']);
    expect(report.problems[0]).toMatchObject({ damage: true, vault: 'prod', path: 'db/password', oid: encodeBlob(BIG).oid });
    expect(report.ok).toBe(false);
    // Everything else was still read: both vaults' other objects are counted.
    expect(report.objects.blobs).toBe(2);
    expect(report.orphans).toBe(0);
  });

  it('reports a commit whose tree record was deleted as missing-object (and what only that tree held as orphans)', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    const vault = await node.vaults.createVault('prod');
    await vault.writeSecret('a', Buffer.from('1'));
    await vault.writeSecret('b', Buffer.from('2'));
    node.close();
    const raw = await rawStore(nodePath, recoveryPhrase);
    const keyspace = raw.vaultKeyspace('prod');
    const { tree } = raw.commitOf(keyspace, raw.head(keyspace));
    raw.store.write([{ keyspace, name: `obj/${tree}`, delete: true }]);
    raw.store.close();
    const report = await checkNode(nodePath);
    // Blob "2" was only in that tree: nothing reaches it now.
    expect(kinds(report)).toEqual(['missing-object', 'orphan-record']);
    expect(report.problems.find((p) => p.kind === 'missing-object')).toMatchObject({ damage: true, vault: 'prod', oid: tree, path: '' });
    expect(report).toMatchObject({ ok: false, orphans: 1 });
  });

  it('reports records reachable from nothing as orphan-record, which is not damage', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    await (await node.vaults.createVault('prod')).writeSecret('a', Buffer.from('1'));
    node.close();
    const raw = await rawStore(nodePath, recoveryPhrase);
    const stray = encodeBlob(Buffer.from('never committed'));
    raw.store.write([
      { keyspace: raw.vaultKeyspace('prod'), name: `obj/${stray.oid}`, value: stray.wrapped },
      { keyspace: raw.nodeKeyspace, name: 'left-over', value: Buffer.from('{}') },
    ]);
    raw.store.close();
    const report = await checkNode(nodePath);
    expect(kinds(report)).toEqual(['orphan-record', 'orphan-record']);
    expect(report).toMatchObject({ ok: true, orphans: 2 });
    expect(report.problems.every((p) => p.damage === false && /^[0-9a-f]{64}$/.test(p.record!))).toBe(true);
  });

  it('reports HEAD pointing to a missing commit as dangling-ref', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    await (await node.vaults.createVault('prod')).writeSecret('a', Buffer.from('1'));
    node.close();
    const raw = await rawStore(nodePath, recoveryPhrase);
    const missing = 'e'.repeat(40);
    raw.store.write([{ keyspace: raw.vaultKeyspace('prod'), name: 'head', value: Buffer.from(missing, 'ascii') }]);
    raw.store.close();
    const report = await checkNode(nodePath);
    expect(report.problems.filter((p) => p.damage)).toEqual([expect.objectContaining({ kind: 'dangling-ref', vault: 'prod', oid: missing })]);
    // The history HEAD no longer reaches: 2 commits, 2 trees, 1 blob, and its index (its head,
    // 2 commit records, 2 prefix buckets, the path record of a).
    expect(report).toMatchObject({ ok: false, orphans: 11 });
  });

  it('reports an object whose content does not hash to its id as hash-mismatch', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    await (await node.vaults.createVault('prod')).writeSecret('a', Buffer.from('1'));
    node.close();
    const raw = await rawStore(nodePath, recoveryPhrase);
    raw.store.write([{ keyspace: raw.vaultKeyspace('prod'), name: `obj/${encodeBlob(Buffer.from('1')).oid}`, value: encodeBlob(Buffer.from('2')).wrapped }]);
    raw.store.close();
    const report = await checkNode(nodePath);
    expect(kinds(report)).toEqual(['hash-mismatch']);
    expect(report.problems[0]).toMatchObject({ vault: 'prod', path: 'a' });
  });

  it('reports an object of the wrong type where a tree names it as bad-object', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    await node.vaults.createVault('prod');
    node.close();
    const raw = await rawStore(nodePath, recoveryPhrase);
    const keyspace = raw.vaultKeyspace('prod');
    const first = raw.head(keyspace);
    // A tree whose entry "x" claims to be a blob but names the first commit.
    const tree = encodeTree(new Map([['x', { mode: '100644', type: 'blob', oid: first }]]));
    const commit = encodeCommit({ tree: tree.oid, parents: [first], author: { name: 't', email: 't@t', timestamp: 0 }, message: 'forged' });
    raw.store.write([
      { keyspace, name: `obj/${tree.oid}`, value: tree.wrapped },
      { keyspace, name: `obj/${commit.oid}`, value: commit.wrapped },
      { keyspace, name: 'head', value: Buffer.from(commit.oid, 'ascii') },
    ]);
    raw.store.close();
    const report = await checkNode(nodePath);
    expect(kinds(report)).toEqual(['bad-object']);
    expect(report.problems[0]).toMatchObject({ oid: first, path: 'x' });
  });

  it('follows every parent of a merge commit (what only a second parent reaches is not an orphan)', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    const vault = await node.vaults.createVault('prod');
    await vault.writeSecret('a', Buffer.from('1'));
    node.close();
    const raw = await rawStore(nodePath, recoveryPhrase);
    const keyspace = raw.vaultKeyspace('prod');
    const main = raw.head(keyspace);
    // A side branch with its own blob, tree and commit, merged as the second parent (as sync may).
    const blob = encodeBlob(Buffer.from('side'));
    const sideTree = encodeTree(new Map([['b', { mode: '100644', type: 'blob', oid: blob.oid }]]));
    const author = { name: 't', email: 't@t', timestamp: 0 };
    const side = encodeCommit({ tree: sideTree.oid, parents: [], author, message: 'side' });
    const merge = encodeCommit({ tree: raw.commitOf(keyspace, main).tree, parents: [main, side.oid], author, message: 'merge' });
    raw.store.write([
      ...[blob, sideTree, side, merge].map((o) => ({ keyspace, name: `obj/${o.oid}`, value: o.wrapped })),
      { keyspace, name: 'head', value: Buffer.from(merge.oid, 'ascii') },
    ]);
    raw.store.close();
    const report = await checkNode(nodePath);
    expect(report).toMatchObject({ ok: true, orphans: 0, problems: [], objects: { commits: 4 } });
  });

  it('reports a damaged vault registry and does not count orphans it cannot tell apart', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    for (const name of ['one', 'two', 'three']) await node.vaults.createVault(name);
    node.close();
    const raw = await rawStore(nodePath, recoveryPhrase);
    damageRecord(nodePath, raw, raw.nodeKeyspace, 'vault-registry');
    // The node itself no longer opens (its vault manager reads the registry first: ERR_INTEGRITY,
    // exit 7), so run the checker on the store directly.
    const keys = new NodeKeys(phraseToMasterSecret(recoveryPhrase)!);
    const store = LogStore.open(nodePath, keys.storeBatchKey);
    const { checkNode: checkStore } = await import('../../src/node/check.js');
    const report = checkStore({ store, nodeKeyspace: new Keyspace(keys.nodeKeyspaceSecret), nodeRecords: ['node-info'] });
    store.close();
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'damaged-record', record: 'vault-registry', damage: true })]);
    expect(report).toMatchObject({ ok: false, orphans: null, vaults: 0 });
  });
});
