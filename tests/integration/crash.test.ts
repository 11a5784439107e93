import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import { createTestNode, runUntilKilled, TEST_PASSWORD } from '../helpers/index.js';

const WRITER = path.resolve(import.meta.dirname, '../fixtures/crashWriter.mjs');
const TRIALS = 24;

/** Run the writer, SIGKILL it `delayMs` after it is ready; resolve to the acknowledged indexes. */
async function runAndKill(nodePath: string, start: number, delayMs: number): Promise<number[]> {
  const acked: number[] = [];
  await runUntilKilled([WRITER, nodePath, TEST_PASSWORD, String(start)], (line, child) => {
    if (line === 'READY') setTimeout(() => child.kill('SIGKILL'), delayMs);
    else if (line.startsWith('ACK ')) acked.push(Number(line.slice(4)));
  });
  return acked;
}

describe('crash safety', () => {
  it(`keeps every acknowledged write across ${TRIALS} SIGKILLs at random instants`, async () => {
    const { node, nodePath } = await createTestNode();
    await node.vaults.createVault('crash');
    node.close();
    const acknowledged: number[] = [];
    let next = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const acked = await runAndKill(nodePath, next, 20 + Math.floor(Math.random() * 300));
      acknowledged.push(...acked);
      next += acked.length + 1000; // indexes never repeat across trials
      // Every acknowledged write of this and earlier trials must be there, byte for byte.
      const reopened = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD, lockWaitMs: 2000 });
      const vault = await reopened.vaults.openVault('crash');
      for (const i of acked) {
        const value = await vault.readSecret(`loop/${i % 50}/k${i}`);
        expect(value.equals(Buffer.alloc(64 + (i % 7) * 300, i % 251))).toBe(true);
      }
      reopened.close();
    }
    expect(acknowledged.length).toBeGreaterThan(TRIALS * 5);
    const final = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
    const vault = await final.vaults.openVault('crash');
    const stored = new Set((await vault.list('loop')).filter((e) => e.type === 'secret').map((e) => e.path));
    for (const i of acknowledged) expect(stored.has(`loop/${i % 50}/k${i}`)).toBe(true);
    final.close();
  }, 180_000);
});
