import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { phraseToMasterSecret } from '../../src/crypto/recoveryPhrase.js';
import { NodeKeys } from '../../src/keys/NodeKeys.js';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import { Keyspace } from '../../src/storage/Keyspace.js';
import { LogStore } from '../../src/storage/LogStore.js';
import { INDEX_META_RECORD, commitRecordName } from '../../src/vaults/historyIndex.js';
import { createTestNode, runUntilKilled, TEST_PASSWORD } from '../helpers/index.js';

const WRITER = path.resolve(import.meta.dirname, '../fixtures/crashWriter.mjs');

/** The index head and HEAD as stored (read with the keys, the vault not opened). */
function storedHeads(nodePath: string, recoveryPhrase: string): { head: string; indexed: string; headRecord: boolean } {
  const keys = new NodeKeys(phraseToMasterSecret(recoveryPhrase)!);
  const store = LogStore.open(nodePath, keys.storeBatchKey);
  try {
    const registry = JSON.parse(store.get(new Keyspace(keys.nodeKeyspaceSecret), 'vault-registry')!.toString('utf8')).vaults as Array<{
      name: string;
      key: string;
    }>;
    const keyspace = new Keyspace(Buffer.from(registry.find((v) => v.name === 'crash')!.key, 'base64'));
    const head = store.get(keyspace, 'head')!.toString('ascii');
    const indexed = (JSON.parse(store.get(keyspace, INDEX_META_RECORD)!.toString('utf8')) as { head: string }).head;
    return { head, indexed, headRecord: store.has(keyspace, commitRecordName(head)) };
  } finally {
    store.close();
  }
}

describe('history index under SIGKILL', () => {
  it('a commit killed at any instant lands with its index records or not at all: the index is never behind HEAD and answers like the commits', async () => {
    const { node, nodePath, recoveryPhrase } = await createTestNode();
    await node.vaults.createVault('crash');
    node.close();
    const acknowledged: number[] = [];
    let next = 0;
    for (let trial = 0; trial < 5; trial++) {
      const acked: number[] = [];
      await runUntilKilled([WRITER, nodePath, TEST_PASSWORD, String(next)], (line, child) => {
        if (line === 'READY') setTimeout(() => child.kill('SIGKILL'), 30 + trial * 60);
        else if (line.startsWith('ACK ')) acked.push(Number(line.slice(4)));
      });
      acknowledged.push(...acked);
      next += acked.length + 1000;
      // The commit batch carries hist/meta and the commit's record with HEAD: no rebuild is due.
      const heads = storedHeads(nodePath, recoveryPhrase);
      expect(heads.indexed).toBe(heads.head);
      expect(heads.headRecord).toBe(true);
    }
    const reopened = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
    const vault = await reopened.vaults.openVault('crash');
    const log = await vault.log();
    // Every acknowledged write is one commit (a write killed after its batch landed may add one more).
    expect(log.length - 1 - acknowledged.length).toBeGreaterThanOrEqual(0);
    expect(log.length - 1 - acknowledged.length).toBeLessThanOrEqual(5);
    for (const i of acknowledged.slice(-20)) {
      const changes = await vault.log({ path: `loop/${i % 50}/k${i}` });
      expect(changes.length).toBe(1);
      expect(await vault.resolveCommit(changes[0]!.commit.slice(0, 8))).toBe(changes[0]!.commit);
      expect((await vault.readSecret(`loop/${i % 50}/k${i}`, { version: changes[0]!.commit })).equals(Buffer.alloc(64 + (i % 7) * 300, i % 251))).toBe(true);
    }
    for (let n = 1; n < Math.min(log.length, 40); n++) expect(await vault.resolveCommit(`HEAD~${n}`)).toBe(log[n]!.commit);
    const check = await reopened.check();
    expect(check.problems).toEqual([]);
    reopened.close();
  }, 60_000);
});
