/**
 * Storage benchmark: opening a store with and without its index checkpoint, the checkpoint's
 * size, and the longest event-loop stall while compacting (synchronously and in steps).
 * Prints figures, asserts nothing. Standalone: `node dist/bench/storage.js [--quick]`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { randomBytes } from '../crypto/random.js';
import { CHECKPOINT_FILE } from '../storage/Checkpoint.js';
import { Keyspace } from '../storage/Keyspace.js';
import { LogStore, STORE_FILE, type BatchOp } from '../storage/LogStore.js';

const VALUE_BYTES = 120;
const RECORDS_PER_BATCH = 1_000;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** A store of `count` records (half of them then overwritten, so compaction has work). */
function buildStore(dir: string, batchKey: Buffer, count: number): void {
  LogStore.create(dir, batchKey);
  const store = LogStore.open(dir, batchKey);
  const keyspace = new Keyspace(randomBytes(32));
  const value = randomBytes(VALUE_BYTES);
  for (const pass of [0, 1]) {
    for (let start = 0; start < count; start += RECORDS_PER_BATCH) {
      const ops: BatchOp[] = [];
      for (let i = start; i < Math.min(count, start + RECORDS_PER_BATCH); i++) {
        if (pass === 0 || i % 2 === 0) ops.push({ keyspace, name: `secret/${i}`, value });
      }
      if (ops.length > 0) store.write(ops);
    }
  }
  store.close();
}

function timeOpen(dir: string, batchKey: Buffer, useCheckpoint: boolean, runs: number): { ms: number; checkpoint: string } {
  const times: number[] = [];
  let checkpoint = '';
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    const store = LogStore.open(dir, batchKey, { useCheckpoint });
    times.push(performance.now() - started);
    checkpoint = store.openStats.checkpoint;
    // Leave the files as they are (close would write a checkpoint after a full replay).
    (store as unknown as { checkpointEnd: number }).checkpointEnd = store.sizeBytes;
    store.close();
  }
  return { ms: median(times), checkpoint };
}

async function longestStall(work: () => Promise<void> | void): Promise<number> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  await new Promise((resolve) => setTimeout(resolve, 5));
  await work();
  await new Promise((resolve) => setTimeout(resolve, 5));
  histogram.disable();
  return histogram.max / 1e6;
}

export async function benchStorage(options: { quick: boolean }): Promise<void> {
  const sizes = options.quick ? [10_000, 100_000] : [100_000, 1_000_000];
  const runs = options.quick ? 3 : 5;
  console.log('## storage: open (unlock excluded) and compaction');
  for (const count of sizes) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keynode-bench-storage-'));
    try {
      const dir = path.join(root, 'node');
      fs.mkdirSync(dir, { mode: 0o700 });
      const batchKey = randomBytes(32);
      buildStore(dir, batchKey, count);
      const logBytes = fs.statSync(path.join(dir, STORE_FILE)).size;
      const checkpointBytes = fs.statSync(path.join(dir, CHECKPOINT_FILE)).size;
      const full = timeOpen(dir, batchKey, false, runs);
      const fromCheckpoint = timeOpen(dir, batchKey, true, runs);
      console.log(
        `${count} records (log ${mib(logBytes)}): open with full replay ${full.ms.toFixed(0)} ms; from checkpoint ${fromCheckpoint.ms.toFixed(0)} ms (${fromCheckpoint.checkpoint}); checkpoint ${mib(checkpointBytes)}`,
      );
      // Compaction, the old way (one synchronous run) and in steps, on copies of the same log.
      for (const mode of ['synchronous', 'in steps'] as const) {
        const copy = path.join(root, `copy-${mode.replace(' ', '-')}`);
        fs.cpSync(dir, copy, { recursive: true });
        const store = LogStore.open(copy, batchKey);
        let ticks = 0;
        let ticking = true;
        const tick = () => {
          ticks++;
          if (ticking) setImmediate(tick);
        };
        setImmediate(tick);
        const started = performance.now();
        const stall = await longestStall(() => (mode === 'synchronous' ? store.compact() : store.compactInSteps()));
        const ms = performance.now() - started;
        ticking = false;
        console.log(
          `${count} records: compaction ${mode}: ${ms.toFixed(0)} ms, longest event-loop stall ${stall.toFixed(0)} ms, ${ticks} event-loop turns meanwhile`,
        );
        store.close();
      }
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await benchStorage({ quick: process.argv.includes('--quick') });
}
