import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import { createTestNode, TEST_PASSWORD } from '../helpers/index.js';

const WRITER = path.resolve(import.meta.dirname, '../fixtures/crashWriter.mjs');
const TRIALS = 24;

/** Run the writer, SIGKILL it `delayMs` after it is ready; resolve to the acknowledged indexes. */
function runAndKill(nodePath: string, start: number, delayMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, nodePath, TEST_PASSWORD, String(start)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: number[] = [];
    let buffered = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line === 'READY') setTimeout(() => child.kill('SIGKILL'), delayMs);
        else if (line.startsWith('ACK ')) acked.push(Number(line.slice(4)));
      }
    });
    child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve(acked) : reject(new Error(`writer ended without being killed: ${stderr}`))));
  });
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
