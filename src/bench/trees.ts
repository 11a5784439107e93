/**
 * Flat directories: one directory of 10,000, 100,000 and 1,000,000 secrets (--quick: 10,000
 * and 100,000). Per size: durable single-secret write (median, p90, max), store bytes per
 * commit (measured mean, and with the snapshot that starts each delta chain spread over the
 * chain), read at HEAD (cached tree), and the first read after reopening the node (the tree
 * rebuilt from its stored delta chain). Growth ratios between sizes side by side.
 * Prints figures, never asserts. Standalone: `node dist/bench/trees.js [--quick]`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { KeynodeNode } from '../node/KeynodeNode.js';
import { maxChainDepth } from '../vaults/treeStore.js';

const PASSWORD = 'bench password';
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;
const ms = (value: number) => `${value.toFixed(3)} ms`;
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
const valueOf = () => Buffer.from(crypto.randomBytes(24).toString('base64'));
const nameOf = (i: number) => `flat/secret-${String(i).padStart(7, '0')}`;

interface Figures {
  size: number;
  write: number;
  writeP90: number;
  writeMax: number;
  bytesPerCommit: number;
  amortisedBytes: number;
  read: number;
  coldRead: number;
}

async function measure(size: number, root: string): Promise<Figures> {
  const nodePath = path.join(root, `node-${size}`);
  const { node } = await KeynodeNode.create({ nodePath, password: PASSWORD, kdf: { memoryKib: 8_192, iterations: 1 } });
  const vault = await node.vaults.createVault('flat');
  const t0 = performance.now();
  for (let start = 0; start < size; start += 200_000) {
    const end = Math.min(size, start + 200_000);
    await vault.writeSecrets(Array.from({ length: end - start }, (_, k) => ({ path: nameOf(start + k), value: valueOf() })));
  }
  console.log(`   ${size} secrets loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const writes = size >= 1_000_000 ? 200 : 1_200;
  for (let k = 0; k < 20; k++) await vault.writeSecret(nameOf(crypto.randomInt(size)), valueOf());
  const before = node.status().storeBytes;
  const times: number[] = [];
  for (let k = 0; k < writes; k++) {
    // Half updates, half new names: both splice the directory's tree.
    const target = k % 2 === 0 ? nameOf(crypto.randomInt(size)) : `flat/new-${k}-${crypto.randomInt(1e9)}`;
    const value = valueOf();
    const t = performance.now();
    await vault.writeSecret(target, value);
    times.push(performance.now() - t);
  }
  const bytesPerCommit = (node.status().storeBytes - before) / writes;
  // Each chain starts with a whole snapshot of the directory (~42 bytes an entry here): when
  // the run is shorter than a chain, add the snapshot's share to what was measured.
  const amortisedBytes = writes >= maxChainDepth(size) ? bytesPerCommit : bytesPerCommit + (size * 42) / maxChainDepth(size);
  const reads: number[] = [];
  for (let k = 0; k < 2_000; k++) {
    const target = nameOf(crypto.randomInt(size));
    const t = performance.now();
    await vault.readSecret(target);
    reads.push(performance.now() - t);
  }
  node.close();
  const reopened = await KeynodeNode.open({ nodePath, password: PASSWORD });
  const again = await reopened.vaults.openVault('flat');
  const t1 = performance.now();
  await again.readSecret(nameOf(1));
  const coldRead = performance.now() - t1;
  reopened.close();
  fs.rmSync(nodePath, { recursive: true, force: true });
  return {
    size,
    write: median(times),
    writeP90: percentile(times, 0.9),
    writeMax: Math.max(...times),
    bytesPerCommit,
    amortisedBytes,
    read: median(reads),
    coldRead,
  };
}

export async function benchTrees(options: { quick: boolean }): Promise<void> {
  console.log('\n== Flat directories: every secret in one directory (trees stored as deltas) ==');
  const sizes = options.quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000];
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keynode-bench-trees-'));
  const results: Figures[] = [];
  try {
    for (const size of sizes) {
      const figures = await measure(size, root);
      results.push(figures);
      console.log(
        `   ${String(size).padStart(9)}: write median ${ms(figures.write)} (p90 ${ms(figures.writeP90)}, max ${ms(figures.writeMax)}), ` +
          `store per commit ${kb(figures.bytesPerCommit)} measured / ${kb(figures.amortisedBytes)} with snapshots spread (chain <= ${maxChainDepth(size)}), ` +
          `read ${ms(figures.read)}, first read after reopen ${ms(figures.coldRead)}`,
      );
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  for (let i = 1; i < results.length; i++) {
    const [a, b] = [results[i - 1]!, results[i]!];
    const ratio = (x: number, y: number) => `${(y / x).toFixed(2)}x`;
    console.log(
      `   growth ${a.size} -> ${b.size}: write ${ratio(a.write, b.write)}, store per commit ${ratio(a.amortisedBytes, b.amortisedBytes)}, read ${ratio(a.read, b.read)} (target <= 1.5x)`,
    );
  }
  console.log('   targets: 100,000: write <= 10 ms, <= 20 KB per commit; 1,000,000: read <= 0.1 ms, write <= 100 ms');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await benchTrees({ quick: process.argv.includes('--quick') });
}
