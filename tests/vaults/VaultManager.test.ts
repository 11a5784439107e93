import { describe, expect, it } from 'vitest';
import { isKeynodeError } from '../../src/errors.js';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import { createTestNode, TEST_PASSWORD } from '../helpers/index.js';

describe('VaultManager', () => {
  it('creates, lists, renames, tags and deletes vaults, persistently', async () => {
    const { node, nodePath } = await createTestNode();
    await node.vaults.createVault('prod');
    await node.vaults.createVault('dev');
    await expect(node.vaults.createVault('prod')).rejects.toMatchObject({ code: 'ERR_VAULT_EXISTS' });
    await expect(node.vaults.createVault('bad/name')).rejects.toMatchObject({ code: 'ERR_INVALID_NAME' });
    await node.vaults.tagVault('prod', 'production');
    await node.vaults.tagVault('dev', 'team-a');
    await node.vaults.tagVault('prod', 'team-a');
    expect(node.vaults.listVaults().map((v) => v.name)).toEqual(['dev', 'prod']);
    expect(node.vaults.listVaults({ tag: 'production' }).map((v) => v.name)).toEqual(['prod']);
    await node.vaults.untagVault('prod', 'production');
    await expect(node.vaults.untagVault('prod', 'production')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    const prod = await node.vaults.openVault('prod');
    await prod.writeSecret('k', Buffer.from('v'));
    await node.vaults.renameVault('prod', 'production');
    await expect(node.vaults.renameVault('dev', 'production')).rejects.toMatchObject({ code: 'ERR_VAULT_EXISTS' });
    expect(prod.name).toBe('production');
    node.close();

    const again = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
    expect(again.vaults.listVaults()).toMatchObject([
      { name: 'dev', tags: ['team-a'] },
      { name: 'production', tags: ['team-a'] },
    ]);
    expect((await (await again.vaults.openVault('production')).readSecret('k')).toString()).toBe('v');
    await expect(again.vaults.openVault('prod')).rejects.toMatchObject({ code: 'ERR_VAULT_NOT_FOUND' });
    await again.vaults.deleteVault('production');
    expect(again.vaults.listVaults().map((v) => v.name)).toEqual(['dev']);
    await again.vaults.createVault('production');
    const reborn = await again.vaults.openVault('production');
    expect(await reborn.list()).toEqual([]);
    again.close();
  });

  it('deleting a vault drops its records from the store', async () => {
    const { node } = await createTestNode();
    const before = node.status();
    const vault = await node.vaults.createVault('tmp');
    for (let i = 0; i < 20; i++) await vault.writeSecret(`s${i}`, Buffer.from(`value ${i}`));
    const sizeWithVault = node.status().storeBytes;
    await node.vaults.deleteVault('tmp');
    const storeRecords = (node as unknown as { store: { recordCount: number } }).store.recordCount;
    expect(storeRecords).toBe(2); // node info and the vault registry
    // Compacted at once: nothing of the vault (nor the registry holding its key) stays in the file.
    expect(node.status().storeBytes).toBeLessThan(before.storeBytes + 200);
    expect(node.status().storeBytes).toBeLessThan(sizeWithVault / 4);
    expect(node.status().vaultCount).toBe(before.vaultCount);
    expect(isKeynodeError(await node.vaults.openVault('tmp').catch((e: unknown) => e), 'ERR_VAULT_NOT_FOUND')).toBe(true);
    node.close();
  });

  it('one store-level write queue: a vault delete purges in steps (never the blocking compaction) while another vault keeps committing', async () => {
    const { node } = await createTestNode();
    const doomed = await node.vaults.createVault('doomed');
    for (let i = 0; i < 20; i++) await doomed.writeSecret(`s${i}`, Buffer.from(`v${i}`));
    const kept = await node.vaults.createVault('kept');
    const store = (node as unknown as { store: { compact(): void; compactInSteps(): Promise<void>; exclusive: unknown } }).store;
    const calls = { blocking: 0, steps: 0 };
    const [compact, compactInSteps] = [store.compact.bind(store), store.compactInSteps.bind(store)];
    store.compact = () => {
      calls.blocking++;
      compact();
    };
    let writesDuringPurge = 0;
    let purging = false;
    store.compactInSteps = async () => {
      calls.steps++;
      purging = true;
      // A commit to another vault started while the log is rewritten lands before the purge ends.
      const write = kept.writeSecret('during', Buffer.from('purge')).then(() => {
        if (purging) writesDuringPurge++;
      });
      await compactInSteps();
      await write;
      purging = false;
    };
    expect(await node.vaults.deleteVault('doomed')).toEqual({ purged: true });
    expect(calls).toEqual({ blocking: 0, steps: 1 });
    expect(writesDuringPurge).toBe(1);
    expect((await kept.readSecret('during')).toString()).toBe('purge');
    expect((node.vaults as unknown as { purgePending: boolean }).purgePending).toBe(false);
    node.close();
  });

  it('a registry record that decodes but is not a registry is ERR_INTEGRITY on open, not a crash later', async () => {
    const { node, nodePath } = await createTestNode();
    await node.vaults.createVault('prod');
    const internals = node as unknown as { store: { write(ops: unknown[]): void } };
    const keyspace = (node.vaults as unknown as { nodeKeyspace: unknown }).nodeKeyspace;
    internals.store.write([{ keyspace, name: 'vault-registry', value: Buffer.from(JSON.stringify({ vaults: [{ name: 'prod', key: 42 }] })) }]);
    node.close();
    await expect(KeynodeNode.open({ nodePath, password: TEST_PASSWORD })).rejects.toMatchObject({ code: 'ERR_INTEGRITY' });
  });
});
