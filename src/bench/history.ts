import { spawnSync } from 'node:child_process';
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

async function landHistory(vault: Vault, commits: number): Promise<{ oids: string[]; lastTree: string }> {
  const oids: string[] = [];
  const keys = new Map<string, TreeEntry>();
  const fixed = encodeBlob(Buffer.from('set once'));
  let parent = vault.headCommit;
  let objects: EncodedObject[] = [fixed];
  let lastTree = '';
  const time = Math.floor(Date.now() / 1000) - commits;
  for (let i = 0; i < commits; i++) {
    const blob = encodeBlob(Buffer.from(`value ${i}`));
    keys.set(`${i % KEYS}`, { mode: '100644', type: 'blob', oid: blob.oid });
    const dir = encodeTree(keys);
    const root = encodeTree(
      new Map<string, TreeEntry>([
        ['fixed', { mode: '100644', type: 'blob', oid: fixed.oid }],
        ['k', { mode: '040000', type: 'tree', oid: dir.oid }],
      ]),
    );
    const commit = encodeCommit({ tree: root.oid, parents: [parent], author: { name: 'n', email: 'n@n', timestamp: time + i }, message: `c${i}` });
    objects.push(blob, dir, root, commit);
    oids.push(commit.oid);
    lastTree = root.oid;
    parent = commit.oid;
    if ((i + 1) % 5_000 === 0 || i === commits - 1) {
      await vault.landCommits({ objects, head: parent });
      objects = [];
    }
  }
  return { oids, lastTree };
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
  const { oids, lastTree } = await landHistory(vault, commits);
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
  // Once a merge is reachable, path queries walk the commit graph (log pages and their changed
  // paths): merge in a one-commit side branch that empties the tree, older than everything.
  const empty = encodeTree(new Map());
  const side = encodeCommit({ tree: empty.oid, parents: [oids[commits - 2]!], author: { name: 'n', email: 'n@n', timestamp: 1 }, message: 'side' });
  const merge = encodeCommit({
    tree: lastTree,
    parents: [oids[commits - 1]!, side.oid],
    author: { name: 'n', email: 'n@n', timestamp: Math.floor(Date.now() / 1000) },
    message: 'merge',
  });
  await vault.landCommits({ objects: [empty, side, merge], head: merge.oid });
  figures['stat after a merge'] = await timed(vault, 3, () => vault.stat('fixed'));
  figures['log --path P -n 1 after a merge'] = await timed(vault, 3, () => vault.log({ path: 'fixed', limit: 1 }));
  // Store bytes a durable one-secret commit adds, index records included.
  const before = node.status().storeBytes;
  for (let i = 0; i < 100; i++) await vault.writeSecret(`k/${i}`, Buffer.from(`w${i}`));
  const perCommit = (node.status().storeBytes - before) / 100;
  node.close();
  return { built, figures, perCommit };
}

const CLI = path.resolve(import.meta.dirname, '..', 'cli', 'keynode.cjs');

/**
 * The same queries through the built CLI with an agent running (what a user waits for): a
 * node made with the library, its history landed, then each command timed as a whole process
 * (wall time, median of `runs`, output discarded, NODE_EXTRA_CA_CERTS unset).
 */
async function measureCli(commits: number, dir: string, runs: number): Promise<Array<[string, number]>> {
  const root = path.join(dir, `cli-${commits}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: path.join(root, 'home'),
    KEYNODE_PATH: path.join(root, 'node'),
    XDG_RUNTIME_DIR: path.join(root, 'run'),
    KEYNODE_PASSWORD: 'bench',
    KEYNODE_NO_PROMPT: '1',
  };
  delete env.NODE_EXTRA_CA_CERTS;
  fs.mkdirSync(env.HOME!, { recursive: true });
  fs.mkdirSync(env.XDG_RUNTIME_DIR!, { recursive: true, mode: 0o700 });
  const { node } = await KeynodeNode.create({ nodePath: env.KEYNODE_PATH!, password: 'bench', kdf: { memoryKib: 8192, iterations: 1 } });
  const { oids } = await landHistory(await node.vaults.createVault('history'), commits);
  node.close();
  const run = (args: string[], runEnv = env) => {
    const start = process.hrtime.bigint();
    const result = spawnSync(process.execPath, [CLI, ...args], { env: runEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    if (result.status !== 0) throw new Error(`keynode ${args.join(' ')} failed: ${result.stderr.toString().trim()}`);
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  const half = Math.floor(commits / 2);
  const old = oids[Math.floor(commits / 10)]!;
  const commands: Array<[string, string[]]> = [
    ['vaults log -n 20', ['vaults', 'log', 'history', '-n', '20']],
    ['vaults log (whole) > /dev/null', ['vaults', 'log', 'history']],
    [`secrets get --version HEAD~${half}`, ['secrets', 'get', 'history:fixed', '--version', `HEAD~${half}`]],
    ['secrets get --version <full id>', ['secrets', 'get', 'history:fixed', '--version', old]],
    ['secrets get --version <8-hex prefix>', ['secrets', 'get', 'history:fixed', '--version', old.slice(0, 8)]],
    ['secrets stat (unchanged since commit 1)', ['secrets', 'stat', 'history:fixed']],
    ['vaults log --path P -n 1', ['vaults', 'log', 'history', '--path', 'fixed', '-n', '1']],
    [`vaults diff HEAD~${half} HEAD`, ['vaults', 'diff', 'history', `HEAD~${half}`, 'HEAD']],
  ];
  run(['agent', 'start', '--background']);
  // Without a password the CLI can only go through the agent's session.
  const viaAgent = { ...env, KEYNODE_PASSWORD: undefined };
  try {
    run(['vaults', 'log', 'history', '-n', '1'], viaAgent); // the agent opens the vault once
    return commands.map(([name, args]) => [name, median(Array.from({ length: runs }, () => run(args, viaAgent)))]);
  } finally {
    run(['agent', 'stop']);
  }
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
      const [x, y] = [
        a.figures[name.replace(String(large / 2), String(small / 2))] ?? Object.values(a.figures)[Object.keys(b.figures).indexOf(name)]!,
        b.figures[name]!,
      ];
      console.log(
        `   ${name.padEnd(34)} ${ms(y.ms).padStart(9)} (${y.objects} objects, ${y.records} index records)   at ${small.toLocaleString('en')}: ${ms(x.ms)}, growth ${(y.ms / x.ms).toFixed(2)}x`,
      );
    }
    console.log(
      `   store bytes per one-secret commit (objects + index + head): ${a.perCommit.toFixed(0)} B at ${small.toLocaleString('en')}, ${b.perCommit.toFixed(0)} B at ${large.toLocaleString('en')}`,
    );
    if (fs.existsSync(CLI)) {
      const runs = 5;
      console.log(
        `\n== History through the CLI with an agent: ${small.toLocaleString('en')} and ${large.toLocaleString('en')} commits (wall time per invocation, median of ${runs}) ==`,
      );
      const [x, y] = [await measureCli(small, dir, runs), await measureCli(large, dir, runs)];
      y.forEach(([name, time], i) =>
        console.log(
          `   ${name.padEnd(40)} ${ms(time).padStart(9)}   at ${small.toLocaleString('en')}: ${ms(x[i]![1])}, growth ${(time / x[i]![1]).toFixed(2)}x`,
        ),
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await benchHistory({ quick: process.argv.includes('--quick') });
}
