import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import { createTestNode, filesUnder, TEST_PASSWORD } from '../helpers/index.js';

function gitOid(type: string, content: Buffer): string {
  return createHash('sha1')
    .update(Buffer.concat([Buffer.from(`${type} ${content.length}\0`), content]))
    .digest('hex');
}

/** Every encoding of a byte string a careless store might leave: raw, hex, base64, UTF-16. */
function encodings(value: Buffer): Buffer[] {
  return [value, Buffer.from(value.toString('hex')), Buffer.from(value.toString('base64').replace(/=+$/, '')), Buffer.from(value.toString('utf8'), 'utf16le')];
}

describe('canary: nothing under the node path is plaintext', () => {
  it('holds no vault name, tag, secret name, value, or git object id of them', async () => {
    const { node, nodePath } = await createTestNode();
    const canaries = {
      vault: 'CANARYvaultQx7Z',
      renamed: 'CANARYrenamedVaultP2',
      tag: 'CANARYtagM4K',
      dir: 'CANARYdirR8w',
      name: 'CANARYsecretNameJ3',
      value: 'CANARYsecretValue-Hq9vWz',
      oldValue: 'CANARYoldValue-Lk2',
      message: 'CANARYcommitMessage',
    };
    const vault = await node.vaults.createVault(canaries.vault);
    await node.vaults.tagVault(canaries.vault, canaries.tag);
    await vault.writeSecret(`${canaries.dir}/${canaries.name}`, Buffer.from(canaries.oldValue));
    await vault.writeSecret(`${canaries.dir}/${canaries.name}`, Buffer.from(canaries.value), { message: canaries.message });
    const other = await node.vaults.createVault('second');
    await other.writeSecret('x', Buffer.from(canaries.value));
    await node.vaults.renameVault('second', canaries.renamed);
    const objectIds = await vault.reachableObjects();
    node.close();
    // Reopen once so anything written on open/close is included.
    (await KeynodeNode.open({ nodePath, password: TEST_PASSWORD })).close();

    const needles: Array<[string, Buffer]> = [];
    for (const [label, text] of Object.entries(canaries)) for (const bytes of encodings(Buffer.from(text))) needles.push([label, bytes]);
    needles.push(['value blob id', Buffer.from(gitOid('blob', Buffer.from(canaries.value)))]);
    for (const oid of objectIds) {
      needles.push([`object id ${oid}`, Buffer.from(oid)]);
      needles.push([`raw object id ${oid}`, Buffer.from(oid, 'hex')]);
    }
    expect(objectIds.length).toBeGreaterThan(5);
    const files = filesUnder(nodePath);
    expect(files.length).toBeGreaterThan(1);
    const found: string[] = [];
    for (const file of files) {
      const bytes = fs.readFileSync(file);
      for (const [label, needle] of needles) if (bytes.includes(needle)) found.push(`${label} in ${file}`);
    }
    expect(found).toEqual([]);
  });
});
