import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { KeynodeNode } from '../node/KeynodeNode.js';
import { encodeBlob, encodeCommit, encodeTree, type EncodedObject } from '../vaults/gitObjects.js';
import type { TreeEntry } from '../vaults/trees.js';
import type { Vault } from '../vaults/Vault.js';

/**
 * History at scale (issue 7): a vault of N linear commits (each sets one of 100 secrets; one
 * secret, `fixed`, is set once by the first), landed in batches, then each history query
 * timed (median of repeats) with the objects and index records it read. Prints, never asserts.
 */
const KEYS = 100;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 0)} ms`;

async function landHistory(vault: Vault, commits: number): Promise<string[]> {
  const oids: string[] = [];
  const keys = new Map<string, TreeEntry>();
  const fixed = encodeBlob(Buffer.from('set once'));
  let parent = vault.headCommit;
  let objects: EncodedObject[] = [fixed];
  const time = Math.floor(Date.now() / 1000) - commits;
  for (let i = 0; i < commits; i++) {
    const blob = encodeBlob(Buffer.from(`value ${i}`));
    keys.set(`${i % KEYS}`, { mode: '100644', type: 'blob', oid: blob.oid });
    const dir = encodeTree(keys);
    const root = encodeTree(new Map<string, TreeEntry>([['fixed', { mode: '100644', type: 'blob', oid: fixed.oid }], ['k', { mode: '040000', type: 'tree', oid: dir.oid }]]));
    const commit = encodeCommit({ tree: root.oid, parents: [parent], author: { name: 'n', email: 'n@n', timestamp: time + i }, message: `c${i}` });
    objects.push(blob, dir, root, commit);
    oids.push(commit.oid);
    parent = commit.oid;
    if ((i + 1) % 5_000 === 0 || i === commits - 1) {
      await vault.landCommits({ objects, head: parent });
      objects = [];
    }
  }
  return oids;
}

async function timed(vault: Vault, repeats: number, run: () => Promise<unknown>): Promise<{ ms: number; objects: number; records: number }> {
  const times: number[] = [];
  let work = { objects: 0, records: 0 };
  for (let i = 0; i < repeats; i++) {
    const before = vault.workCounters;
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
    const after = vault.workCounters;
    work = { objects: after.objectReads - before.objectReads, records: after.indexRecordReads - before.indexRecordReads };
  }
  return { ms: median(times), ...work };
}

async function measure(commits: number, dir: string) {
  const { node } = await KeynodeNode.create({ nodePath: path.join(dir, `node-${commits}`), password: 'bench', kdf: { memoryKib: 8192, iterations: 1 } });
  const vault = await node.vaults.createVault('history');
  const t0 = performance.now();
  const oids = await landHistory(vault, commits);
  const built = performance.now() - t0;
  const half = Math.floor(commits / 2);
  const old = oids[Math.floor(commits / 10)]!;
  const figures: Record<string, { ms: number; objects: number; records: number }> = {
    'log -n 20': await timed(vault, 9, () => vault.log({ limit: 20 })),
    'log (whole)': await timed(vault, 3, () => vault.log()),
    [`get --version HEAD~${half}`]: await timed(vault, 9, () => vault.readSecret('fixed', { version: `HEAD~${half}` })),
    'get --version <full id>': await timed(vault, 9, () => vault.readSecret('fixed', { version: old })),
    'get --version <8-hex prefix>': await timed(vault, 9, () => vault.readSecret('fixed', { version: old.slice(0, 8) })),
    'stat (unchanged since commit 1)': await timed(vault, 9, () => vault.stat('fixed')),
    'log --path P -n 1': await timed(vault, 9, () => vault.log({ path: 'fixed', limit: 1 })),
    [`diff HEAD~${half} HEAD`]: await timed(vault, 5, () => vault.diff(`HEAD~${half}`, 'HEAD')),
  };
  // Store bytes a durable one-secret commit adds, index records included.
  const before = node.status().storeBytes;
  for (let i = 0; i < 100; i++) await vault.writeSecret(`k/${i}`, Buffer.from(`w${i}`));
  const perCommit = (node.status().storeBytes - before) / 100;
  node.close();
  return { built, figures, perCommit };
}

export async function benchHistory(options: { quick: boolean }): Promise<void> {
  const large = options.quick ? 10_000 : 100_000;
  const small = large / 10;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keynode-bench-history-'));
  try {
    console.log(`\n== History: vaults of ${small.toLocaleString('en')} and ${large.toLocaleString('en')} linear commits (library, no agent) ==`);
    const a = await measure(small, dir);
    const b = await measure(large, dir);
    console.log(`   landed (objects + index, batches of 5,000): ${(a.built / 1000).toFixed(1)} s and ${(b.built / 1000).toFixed(1)} s`);
    for (const name of Object.keys(b.figures)) {
      const [x, y] = [a.figures[name.replace(String(large / 2), String(small / 2))] ?? Object.values(a.figures)[Object.keys(b.figures).indexOf(name)]!, b.figures[name]!];
      console.log(`   ${name.padEnd(34)} ${ms(y.ms).padStart(9)} (${y.objects} objects, ${y.records} index records)   at ${small.toLocaleString('en')}: ${ms(x.ms)}, growth ${(y.ms / x.ms).toFixed(2)}x`);
    }
    console.log(`   store bytes per one-secret commit (objects + index + head): ${a.perCommit.toFixed(0)} B at ${small.toLocaleString('en')}, ${b.perCommit.toFixed(0)} B at ${large.toLocaleString('en')}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await benchHistory({ quick: process.argv.includes('--quick') });
}
