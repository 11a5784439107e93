/**
 * Large values, the storage half: stage (seal in 1 MiB chunks, hash, write in 8 MiB batches,
 * fsync each) plus the commit of the manifest, then read back (verify every chunk and the SHA-1
 * of the whole), at 100 MiB and 1 GiB (--quick: 100 MiB), on tmpfs (/dev/shm) and on the disk
 * (os.tmpdir()). Per run: MB/s, and the process's peak RSS and buffer bytes above idle, sampled
 * as the value streams. Then the same through a vault (Vault.writeSecretStream / readSecretStream:
 * commit included). Side by side: the whole-value calls (writeSecret / readSecret of a 64 MiB
 * value in one buffer), and sealing alone (one AEAD call vs the chunked stream).
 * Prints figures, never asserts. Standalone: `node dist/bench/largeValues.js [--quick]`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { seal, aeadKey } from '../crypto/aead.js';
import { StreamWriter, streamKey } from '../crypto/stream.js';
import { KeynodeNode } from '../node/KeynodeNode.js';
import { Keyspace } from '../storage/Keyspace.js';
import { LogStore } from '../storage/LogStore.js';
import { readLargeBlob, stageLargeBlob } from '../vaults/largeBlobs.js';
import { benchLargeValuesCli } from './largeValuesCli.js';

const MIB = 1024 * 1024;
const REPEATS = 3;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const mbps = (bytes: number, ms: number) => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
const mib = (bytes: number) => `${(bytes / MIB).toFixed(0)} MiB`;

/** Peak RSS and buffer bytes above a baseline, sampled on demand. */
class MemoryPeak {
  constructor(private readonly base = process.memoryUsage()) {}
  rss = 0;
  buffers = 0;
  sample(): void {
    const now = process.memoryUsage();
    this.rss = Math.max(this.rss, now.rss - this.base.rss);
    this.buffers = Math.max(this.buffers, now.arrayBuffers - this.base.arrayBuffers);
  }
}

/** `size` bytes in 1 MiB pieces (one buffer reused, a counter makes each piece distinct). */
async function* value(size: number, memory?: MemoryPeak): AsyncGenerator<Uint8Array> {
  const piece = crypto.randomBytes(MIB);
  for (let at = 0, n = 0; at < size; at += MIB, n++) {
    piece.writeUInt32BE(n, 0);
    if (n % 8 === 0) memory?.sample();
    yield piece.subarray(0, Math.min(MIB, size - at));
  }
}

interface Run {
  stageMs: number;
  readMs: number;
  stage: MemoryPeak;
  read: MemoryPeak;
}

/** `declareSize: false` is stdin from a pipe: the git id is hashed by reading the staged chunks back. */
async function runOnce(root: string, size: number, declareSize = true): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(root, 'keynode-bench-large-'));
  try {
    const batchKey = crypto.randomBytes(32);
    LogStore.create(dir, batchKey);
    const store = LogStore.open(dir, batchKey);
    const keyspace = new Keyspace(crypto.randomBytes(32));
    const idle = process.memoryUsage();
    const stage = new MemoryPeak(idle);
    const t0 = performance.now();
    const staged = await stageLargeBlob({ store, keyspace, source: value(size, stage), size: declareSize ? size : undefined });
    store.write(staged.commitOps);
    const stageMs = performance.now() - t0;
    const read = new MemoryPeak(idle);
    const t1 = performance.now();
    let n = 0;
    for await (const chunk of readLargeBlob({ store, keyspace, oid: staged.oid })) {
      if (chunk.length > 0 && n++ % 8 === 0) read.sample();
    }
    const readMs = performance.now() - t1;
    store.close();
    return { stageMs, readMs, stage, read };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Through a vault (KeynodeNode, Vault.writeSecretStream / readSecretStream): the stream
 * sized like a file (`size` declared), the commit, and the read back, each verified.
 */
async function vaultStreamed(root: string, size: number): Promise<{ writeMs: number; readMs: number; write: MemoryPeak; read: MemoryPeak }> {
  const dir = fs.mkdtempSync(path.join(root, 'keynode-bench-vault-'));
  try {
    const { node } = await KeynodeNode.create({ nodePath: path.join(dir, 'node'), password: 'bench', kdf: { memoryKib: 8_192, iterations: 1 } });
    const vault = await node.vaults.createVault('large');
    const idle = process.memoryUsage();
    const write = new MemoryPeak(idle);
    const t0 = performance.now();
    await vault.writeSecretStream('big', value(size, write), { size });
    const writeMs = performance.now() - t0;
    const read = new MemoryPeak(idle);
    const t1 = performance.now();
    let n = 0;
    let bytes = 0;
    for await (const chunk of vault.readSecretStream('big')) {
      bytes += chunk.length;
      if (n++ % 8 === 0) read.sample();
    }
    const readMs = performance.now() - t1;
    if (bytes !== size) throw new Error('streamed read returned the wrong size');
    node.close();
    return { writeMs, readMs, write, read };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The whole-value calls (Vault.writeSecret / readSecret, one buffer) at the largest size they take. */
async function wholeValue(root: string, size: number): Promise<{ writeMs: number; readMs: number; memory: MemoryPeak }> {
  const dir = fs.mkdtempSync(path.join(root, 'keynode-bench-whole-'));
  try {
    const { node } = await KeynodeNode.create({ nodePath: path.join(dir, 'node'), password: 'bench', kdf: { memoryKib: 8_192, iterations: 1 } });
    const vault = await node.vaults.createVault('large');
    const memory = new MemoryPeak();
    const data = crypto.randomBytes(size);
    const t0 = performance.now();
    await vault.writeSecret('big', data);
    const writeMs = performance.now() - t0;
    memory.sample();
    const t1 = performance.now();
    const back = await vault.readSecret('big');
    const readMs = performance.now() - t1;
    memory.sample();
    if (back.length !== size) throw new Error('whole-value read returned the wrong size');
    node.close();
    return { writeMs, readMs, memory };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function sealingAlone(size: number): { oneCallMs: number; streamMs: number } {
  const data = crypto.randomBytes(size);
  const oneCall: number[] = [];
  const stream: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const t0 = performance.now();
    seal(aeadKey(crypto.randomBytes(32)), data);
    oneCall.push(performance.now() - t0);
    const t1 = performance.now();
    const writer = new StreamWriter(streamKey(crypto.randomBytes(32), crypto.randomBytes(32)));
    for (let at = 0; at < size; at += MIB) writer.push(data.subarray(at, at + MIB));
    writer.finish();
    stream.push(performance.now() - t1);
  }
  return { oneCallMs: median(oneCall), streamMs: median(stream) };
}

export async function benchLargeValues(options: { quick: boolean }): Promise<void> {
  console.log('\n== Large values (storage half): chunked stream, staged in batches, read back verified ==');
  const sizes = options.quick ? [100 * MIB] : [100 * MIB, 1024 * MIB];
  const places = [...(fs.existsSync('/dev/shm') ? [{ name: 'tmpfs /dev/shm', root: '/dev/shm' }] : []), { name: `disk ${os.tmpdir()}`, root: os.tmpdir() }];
  const sealed = sealingAlone(100 * MIB);
  console.log(`   sealing 100 MiB alone: one AEAD call ${sealed.oneCallMs.toFixed(0)} ms, 1 MiB stream chunks ${sealed.streamMs.toFixed(0)} ms`);
  for (const place of places) {
    for (const size of sizes) {
      const runs: Run[] = [];
      for (let i = 0; i < (size > 512 * MIB ? 1 : REPEATS); i++) runs.push(await runOnce(place.root, size));
      const stageMs = median(runs.map((r) => r.stageMs));
      const readMs = median(runs.map((r) => r.readMs));
      const peak = (pick: (r: Run) => number) => Math.max(...runs.map(pick));
      console.log(
        `   ${place.name}, ${mib(size)} (median of ${runs.length}): set ${mbps(size, stageMs)} (${stageMs.toFixed(0)} ms), get ${mbps(size, readMs)} (${readMs.toFixed(0)} ms); ` +
          `peak above idle: set rss ${mib(peak((r) => r.stage.rss))} / buffers ${mib(peak((r) => r.stage.buffers))}, get rss ${mib(peak((r) => r.read.rss))} / buffers ${mib(peak((r) => r.read.buffers))}`,
      );
    }
    const unsizedTimes: number[] = [];
    for (let i = 0; i < REPEATS; i++) unsizedTimes.push((await runOnce(place.root, 100 * MIB, false)).stageMs);
    const unsized = median(unsizedTimes);
    console.log(`   ${place.name}, 100 MiB of unknown size (a pipe: hashed by reading the staged chunks back): set ${mbps(100 * MIB, unsized)}`);
    for (const size of sizes) {
      const runs: Array<Awaited<ReturnType<typeof vaultStreamed>>> = [];
      for (let i = 0; i < (size > 512 * MIB ? 1 : REPEATS); i++) runs.push(await vaultStreamed(place.root, size));
      const writeMs = median(runs.map((r) => r.writeMs));
      const readMs = median(runs.map((r) => r.readMs));
      const peak = (pick: (r: (typeof runs)[number]) => number) => Math.max(...runs.map(pick));
      console.log(
        `   ${place.name}, vault writeSecretStream/readSecretStream ${mib(size)} (median of ${runs.length}): set ${mbps(size, writeMs)}, get ${mbps(size, readMs)}; ` +
          `peak above idle: set rss ${mib(peak((r) => r.write.rss))} / buffers ${mib(peak((r) => r.write.buffers))}, get rss ${mib(peak((r) => r.read.rss))} / buffers ${mib(peak((r) => r.read.buffers))}`,
      );
    }
    const whole = await wholeValue(place.root, 64 * MIB);
    console.log(
      `   ${place.name}, whole-value calls for comparison (Vault.writeSecret/readSecret, 64 MiB in one buffer, the most readSecret returns): ` +
        `set ${mbps(64 * MIB, whole.writeMs)}, get ${mbps(64 * MIB, whole.readMs)}, peak above idle rss ${mib(whole.memory.rss)} / buffers ${mib(whole.memory.buffers)}`,
    );
  }
  console.log('   targets: >= 200 MB/s set and get, <= 64 MB above idle whatever the size');
  await benchLargeValuesCli(options);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await benchLargeValues({ quick: process.argv.includes('--quick') });
}
