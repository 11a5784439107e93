import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isKeynodeError } from '../../src/errors.js';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import { createTestNode, tempDir, TEST_PASSWORD } from '../helpers/index.js';

const SECRETS = Array.from({ length: 12 }, (_, i) => ({ path: `dir${i % 3}/secret-${i}`, value: Buffer.from(`value number ${i} `.repeat(20)) }));

/**
 * Open a tampered copy and read everything. Each read must return the true value or fail with
 * ERR_INTEGRITY; nothing may return other bytes or throw anything but a KeynodeError.
 */
async function readAll(nodePath: string): Promise<{ ok: number; integrity: number; other: string[] }> {
  const result = { ok: 0, integrity: 0, other: [] as string[] };
  let node: KeynodeNode;
  try {
    node = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
  } catch (error) {
    if (isKeynodeError(error, 'ERR_INTEGRITY')) result.integrity++;
    else result.other.push(isKeynodeError(error) ? error.code : String(error));
    return result;
  }
  try {
    const vault = await node.vaults.openVault('tamper');
    for (const { path: secretPath, value } of SECRETS) {
      try {
        const read = await vault.readSecret(secretPath);
        if (read.equals(value)) result.ok++;
        else result.other.push(`WRONG DATA for ${secretPath}`);
      } catch (error) {
        if (isKeynodeError(error, 'ERR_INTEGRITY')) {
          result.integrity++;
          expect(error.message).toContain(`tamper:${secretPath}`);
        } else result.other.push(isKeynodeError(error) ? `${error.code}: ${error.message}` : String(error));
      }
    }
    // Then every version of every secret, so every live record of history is read too.
    for (const commit of await vault.log()) {
      for (const entry of await vault.list('', { version: commit.commit })) {
        if (entry.type !== 'secret') continue;
        const read = await vault.readSecret(entry.path, { version: commit.commit });
        if (!SECRETS.some((s) => s.path === entry.path && s.value.equals(read))) result.other.push(`WRONG DATA for ${entry.path} at ${commit.commit}`);
      }
    }
  } catch (error) {
    if (isKeynodeError(error, 'ERR_INTEGRITY')) result.integrity++;
    else result.other.push(isKeynodeError(error) ? `${error.code}: ${error.message}` : String(error));
  } finally {
    node.close();
  }
  return result;
}

describe('tamper detection', () => {
  it('flipped bytes anywhere in the store give ERR_INTEGRITY, never wrong data or a crash', async () => {
    const { node, nodePath } = await createTestNode();
    const vault = await node.vaults.createVault('tamper');
    for (const s of SECRETS) await vault.writeSecret(s.path, s.value);
    node.close();
    const store = path.join(nodePath, 'store.log');
    const original = fs.readFileSync(store);
    const positions = new Set<number>();
    for (let i = 0; i < 150; i++) positions.add(Math.floor((i / 150) * original.length));
    positions.add(original.length - 1);
    let detected = 0;
    for (const position of positions) {
      const copy = path.join(tempDir(), 'node');
      fs.cpSync(nodePath, copy, { recursive: true });
      const bytes = Buffer.from(original);
      bytes[position]! ^= 0x5a;
      fs.writeFileSync(path.join(copy, 'store.log'), bytes);
      const result = await readAll(copy);
      expect(result.other, `flip at byte ${position}`).toEqual([]);
      if (result.integrity > 0) detected++;
    }
    // Only bytes of dead records (the vault head and registry as they were before being
    // overwritten) may flip unnoticed: they are never read again.
    expect(detected).toBeGreaterThan(positions.size * 0.8);
  }, 120_000);

  it('a damaged key file is reported as ERR_INTEGRITY, not as a wrong password', async () => {
    const { node, nodePath } = await createTestNode();
    node.close();
    const file = path.join(nodePath, 'keynode.key');
    const bytes = fs.readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    fs.writeFileSync(file, bytes);
    await expect(KeynodeNode.open({ nodePath, password: TEST_PASSWORD })).rejects.toMatchObject({ code: 'ERR_INTEGRITY' });
  });
});
