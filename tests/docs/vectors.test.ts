import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hkdf } from '../../src/crypto/kdf.js';
import { masterSecretToPhrase, phraseToMasterSecret } from '../../src/crypto/recoveryPhrase.js';
import { NodeKeys } from '../../src/keys/NodeKeys.js';
import { nodeIdFromPublicKey } from '../../src/keys/nodeId.js';
import { Keyspace } from '../../src/storage/Keyspace.js';
import { encodeBlob } from '../../src/vaults/gitObjects.js';

/** The `vectors` block of docs/storage-format.md as label -> value. */
function vectors(): Map<string, string> {
  const text = fs.readFileSync(path.resolve(import.meta.dirname, '../../docs/storage-format.md'), 'utf8');
  const block = /```vectors\n([\s\S]*?)```/.exec(text)![1]!;
  return new Map(
    block
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, 25).trim(), line.slice(25).trim()]),
  );
}

describe('docs/storage-format.md test vectors', () => {
  it('derive exactly as documented', async () => {
    const v = vectors();
    expect(v.size).toBe(9);
    const master = Buffer.from(v.get('master secret')!, 'hex');
    expect(masterSecretToPhrase(master)).toBe(v.get('recovery phrase'));
    expect(phraseToMasterSecret(v.get('recovery phrase')!)?.equals(master)).toBe(true);
    const keys = new NodeKeys(master);
    expect(keys.identity.publicKeyRaw.toString('hex')).toBe(v.get('ed25519 public key'));
    expect(await nodeIdFromPublicKey(keys.identity.publicKeyRaw)).toBe(v.get('node id'));
    expect(keys.storeBatchKey.toString('hex')).toBe(v.get('store batch key'));
    expect(keys.nodeKeyspaceSecret.toString('hex')).toBe(v.get('node keyspace secret'));
    expect(hkdf(keys.nodeKeyspaceSecret, 'keynode/keyspace/lookup').toString('hex')).toBe(v.get('node keyspace lookup key'));
    expect(new Keyspace(keys.nodeKeyspaceSecret).recordId('vault-registry').toString('hex')).toBe(v.get('id of "vault-registry"'));
    expect(encodeBlob(Buffer.from('hunter2')).oid).toBe(v.get('blob id of "hunter2"'));
  });
});
