import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isNodeId, isVaultId, toNodeId, toVaultId } from '../src/ids.js';
import { nodeIdFromPublicKey } from '../src/keys/nodeId.js';

describe('typed ids', () => {
  it('takes the node id of a real key and refuses other strings', async () => {
    const { publicKey } = crypto.generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    const id = await nodeIdFromPublicKey(raw);
    expect(isNodeId(id)).toBe(true);
    expect(toNodeId(id)).toBe(id);
    for (const bad of ['', 'prod', `${id}x`, id.slice(0, -1), id.replace('12D3', '12d3'), `${id.slice(0, -1)}0`]) {
      expect(() => toNodeId(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    }
  });

  it('takes 32 lowercase hex digits as a vault id, nothing else', () => {
    const id = crypto.randomBytes(16).toString('hex');
    expect(toVaultId(id)).toBe(id);
    expect(isVaultId(id.toUpperCase())).toBe(false);
    expect(isVaultId('prod')).toBe(false);
    expect(() => toVaultId(`${id}0`)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});
