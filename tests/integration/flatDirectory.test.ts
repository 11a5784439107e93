import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { phraseToMasterSecret } from '../../src/crypto/recoveryPhrase.js';
import { isKeynodeError } from '../../src/errors.js';
import { NodeKeys } from '../../src/keys/NodeKeys.js';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import { Keyspace } from '../../src/storage/Keyspace.js';
import { LogStore } from '../../src/storage/LogStore.js';
import { treeCounters } from '../../src/vaults/trees.js';
import { isTreeDelta, loadStoredTree } from '../../src/vaults/treeStore.js';
import { createTestNode, tempDir, TEST_PASSWORD } from '../helpers/index.js';

const hasGit = spawnSync('git', ['--version']).status === 0;
const git = (args: string[], cwd: string) => spawnSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: cwd } });
const nameOf = (i: number) => `flat/secret-${String(i).padStart(6, '0')}`;

/** Runs `work` and returns how many bytes the store file grew and how many tree entries were parsed and written. */
async function cost(node: KeynodeNode, work: () => Promise<unknown>) {
  const [bytes, parsed, written] = [node.status().storeBytes, treeCounters.entriesParsed, treeCounters.entriesWritten];
  await work();
  return { bytes: node.status().storeBytes - bytes, parsed: treeCounters.entriesParsed - parsed, written: treeCounters.entriesWritten - written };
}

describe('a flat directory of 200,000 secrets', () => {
  it('a single-secret write stores a few KB and touches a chunk of the tree, not the whole directory', async () => {
    const size = 200_000;
    const { node, nodePath } = await createTestNode();
    const vault = await node.vaults.createVault('flat');
    // One value for all: the directory's tree is what is measured, not 200,000 blob records.
    const value = Buffer.from('same value');
    await vault.writeSecrets(Array.from({ length: size }, (_, i) => ({ path: nameOf(i), value })));

    // Today's code re-encodes and stores the whole ~8 MB tree on every commit.
    for (const [k, work] of [
      () => vault.writeSecret(nameOf(123_456), Buffer.from('changed')),
      () => vault.writeSecret('flat/a-brand-new-name', Buffer.from('new')),
      () => vault.remove(nameOf(7)),
    ].entries()) {
      const spent = await cost(node, work);
      expect(spent.bytes, `commit ${k}`).toBeLessThanOrEqual(20 * 1024);
      expect(spent.parsed, `commit ${k}`).toBe(0);
      expect(spent.written, `commit ${k}`).toBeLessThanOrEqual(2_000);
    }
    expect((await vault.readSecret(nameOf(123_456))).toString()).toBe('changed');
    expect(await vault.exists(nameOf(7))).toBe(false);
    node.close();

    // Reopened: the directory is rebuilt from its delta chain (and its id checked) on first read.
    const again = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
    const reopened = await again.vaults.openVault('flat');
    expect((await reopened.readSecret(nameOf(123_456))).toString()).toBe('changed');
    expect((await reopened.readSecret('flat/a-brand-new-name')).toString()).toBe('new');
    expect((await reopened.readSecret(nameOf(199_999))).toString()).toBe('same value');
    expect((await reopened.list('flat', { recursive: false })).length).toBe(size);
    again.close();
  });
});

describe('trees stored as deltas, seen from outside', () => {
  it.skipIf(!hasGit)('export a bundle that passes git fsck --strict, and keynode check finds no damage', async () => {
    const { node } = await createTestNode();
    const vault = await node.vaults.createVault('v');
    await vault.writeSecrets(Array.from({ length: 2_000 }, (_, i) => ({ path: nameOf(i), value: Buffer.from(`v${i}`) })));
    for (let k = 0; k < 40; k++) {
      if (k % 5 === 4) await vault.remove(nameOf(k));
      else await vault.writeSecret(k % 2 ? nameOf(k * 37) : `flat/new-${k}`, Buffer.from(`w${k}`));
    }
    await vault.writeSecret('nested/deeper/x', Buffer.from('x'));
    const root = tempDir();
    const bundle = path.join(root, 'v.bundle');
    await vault.exportBundle(bundle);
    const report = await node.check();
    node.close();
    expect(report.problems.filter((problem) => problem.damage)).toEqual([]);
    expect(report.objects.trees).toBeGreaterThan(40);
    const clone = path.join(root, 'clone');
    const cloned = git(['clone', '-q', bundle, clone], root);
    expect(cloned.status, cloned.stderr).toBe(0);
    const fsck = git(['fsck', '--strict'], clone);
    expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
    expect(fs.readFileSync(path.join(clone, nameOf(37)), 'utf8')).toBe('w1');
    expect(git(['rev-list', '--count', 'HEAD'], clone).stdout.trim()).toBe('43');
  });
});

describe('a damaged delta chain on disk', () => {
  it('a missing or altered base makes reads ERR_INTEGRITY and keynode check report damage', async () => {
    for (const harm of ['delete', 'alter'] as const) {
      const { node, nodePath, recoveryPhrase } = await createTestNode();
      const vault = await node.vaults.createVault('v');
      await vault.writeSecrets(Array.from({ length: 500 }, (_, i) => ({ path: nameOf(i), value: Buffer.from(`v${i}`) })));
      for (let k = 0; k < 3; k++) await vault.writeSecret(nameOf(k), Buffer.from(`w${k}`));
      node.close();

      // With the keys, as a tool would: find the directory's delta record and its base.
      const keys = new NodeKeys(phraseToMasterSecret(recoveryPhrase)!);
      const store = LogStore.open(nodePath, keys.storeBatchKey);
      const registry = JSON.parse(store.get(new Keyspace(keys.nodeKeyspaceSecret), 'vault-registry')!.toString('utf8')).vaults as Array<{ key: string }>;
      const keyspace = new Keyspace(Buffer.from(registry[0]!.key, 'base64'));
      const readRecord = (oid: string) => store.get(keyspace, `obj/${oid}`);
      const head = store.get(keyspace, 'head')!.toString('ascii');
      const rootTree = /tree ([0-9a-f]{40})/.exec(readRecord(head)!.toString('latin1'))![1]!;
      const flat = loadStoredTree({ oid: rootTree, readRecord }).tree.get('flat')!.oid;
      const delta = readRecord(flat)!;
      expect(isTreeDelta(delta)).toBe(true);
      const base = delta.toString('hex', 22, 42);
      if (harm === 'delete') {
        store.write([{ keyspace, name: `obj/${base}`, delete: true }]);
      } else {
        // A well-formed whole tree, but not the one the id names.
        const wrong = Buffer.from(readRecord(base)!);
        wrong[wrong.length - 1]! ^= 1;
        store.write([{ keyspace, name: `obj/${base}`, value: wrong }]);
      }
      store.close();

      const again = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
      const reopened = await again.vaults.openVault('v');
      const failure = await reopened.readSecret(nameOf(100)).catch((error: unknown) => error);
      expect(isKeynodeError(failure, 'ERR_INTEGRITY'), `${harm}: ${String(failure)}`).toBe(true);
      const report = await again.check();
      again.close();
      expect(report.ok, harm).toBe(false);
      expect(
        report.problems.some((problem) => problem.damage && problem.oid === flat),
        harm,
      ).toBe(true);
    }
  });
});
