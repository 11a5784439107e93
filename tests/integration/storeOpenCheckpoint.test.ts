import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Keyspace } from '../../src/storage/Keyspace.js';
import { LogStore, type BatchOp } from '../../src/storage/LogStore.js';
import { CHECKPOINT_FILE } from '../../src/storage/Checkpoint.js';
import { randomBytes } from '../../src/crypto/random.js';
import { runUntilKilled, tempDir } from '../helpers/index.js';

const fixture = fileURLToPath(new URL('../fixtures/crashCheckpointer.mjs', import.meta.url));

describe('index checkpoint under SIGKILL', () => {
  it('a kill at any point of writing a checkpoint loses no acknowledged batch and never misleads an open', async () => {
    const dir = tempDir();
    const batchKey = randomBytes(32);
    const secret = randomBytes(32);
    const keyspace = new Keyspace(secret);
    LogStore.create(dir, batchKey);
    // 30k records so each checkpoint takes a while to write (~1.4 MB).
    const seed = LogStore.open(dir, batchKey);
    for (let start = 0; start < 30_000; start += 1000) {
      const ops: BatchOp[] = [];
      for (let i = start; i < start + 1000; i++) ops.push({ keyspace, name: `seed${i}`, value: Buffer.from(`s${i}`) });
      seed.write(ops);
    }
    seed.close();
    let next = 1;
    const outcomes = new Set<string>();
    for (let round = 0; round < 6; round++) {
      let acked = -1;
      let ready = false;
      const killAfter = 5 + round * 7;
      await runUntilKilled([fixture, dir, batchKey.toString('hex'), secret.toString('hex'), String(next)], (line, child) => {
        if (line === 'READY') ready = true;
        const match = /^ACK (\d+)$/.exec(line);
        if (match) {
          acked = Number(match[1]);
          // Kill a varying time after an acknowledgement: before, inside or after a checkpoint.
          if (acked - next >= killAfter) setTimeout(() => child.kill('SIGKILL'), round % 3);
        }
      });
      expect(ready).toBe(true);
      const opened = LogStore.open(dir, batchKey);
      outcomes.add(opened.openStats.checkpoint);
      const full = LogStore.open(dir, batchKey, { useCheckpoint: false });
      // Every acknowledged batch is there (k<acked>, or the unacknowledged next batch replaced
      // it); the checkpoint, used or not, changes nothing.
      const last = opened.get(keyspace, `k${acked}`)?.toString() ?? opened.get(keyspace, `k${acked + 1}`)?.toString();
      expect([`v${acked}`, `v${acked + 1}`]).toContain(last);
      for (const name of [`k${acked}`, `k${acked - 1}`, `k${acked + 1}`, 'seed0', 'seed29999']) {
        expect(opened.get(keyspace, name)?.toString()).toBe(full.get(keyspace, name)?.toString());
      }
      expect(opened.stats()).toEqual(full.stats());
      opened.verifyLog();
      next = opened.has(keyspace, `k${acked + 1}`) ? acked + 2 : acked + 1;
      opened.close();
      full.close();
    }
    expect(outcomes.has('used')).toBe(true);
    // Temp files of interrupted checkpoints are removed by the next checkpoint written.
    const last = LogStore.open(dir, batchKey);
    last.checkpoint();
    last.close();
    expect(fs.readdirSync(dir).filter((name) => name.startsWith(CHECKPOINT_FILE))).toEqual([CHECKPOINT_FILE]);
  }, 60_000);
});
