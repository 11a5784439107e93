/**
 * `npm run bench`: keynode's figures, measured here and printed (never asserted).
 *
 *   1. Library API: durable secret write (one commit) and read, medians, in a vault of 1,000,
 *      10,000 and 100,000 secrets; the growth of the write cost from 1,000 to 100,000.
 *   2. Unlock with the default argon2id and open a 10,000-secret vault.
 *   3. The same 1,000 inserts and 1,000 reads through Debian's `pass` (installed if missing,
 *      with a throwaway GnuPG home and key), and the keynode/pass ratios.
 *   4. With the agent running: `keynode secrets get` / `set` wall time per invocation
 *      (NODE_EXTRA_CA_CERTS unset), 1,000 gets over one client connection, and the agent's
 *      RSS serving 100 vaults of 1,000 secrets.
 *
 *   5. Scale (issue 7), one module each, also runnable alone (`node dist/bench/<name>.js [--quick]`):
 *      storage (open with and without the index checkpoint, compaction stalls), trees (flat
 *      directories of 10k/100k/1M), history (a vault of 10k/100k commits), listing (`secrets ls`
 *      of 100k/1M streamed: first line, total, peak memory), largeValues (chunked values to 1 GiB), cli (every command's invocation time; native client vs Node vs pass).
 *
 * Options: --quick (skip 100,000 and pass; smaller scale sections), --pass-count N (default 1000),
 * --only a,b (run only these sections: library, unlock, pass, agent, storage, trees, history,
 * listing, largeValues, cli).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KeynodeNode } from '../node/KeynodeNode.js';
import type { Vault } from '../vaults/Vault.js';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const PASS_COUNT = Number(args[args.indexOf('--pass-count') + 1] ?? 0) || 1000;
const PASSWORD = 'bench password';
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keynode-bench-'));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}
const ms = (value: number) => `${value.toFixed(3)} ms`;

/** Balanced layout: 100 secrets per directory, 100 directories per group. */
const pathOf = (i: number) => `group${Math.floor(i / 10_000)}/dir${Math.floor(i / 100) % 100}/secret${i}`;
const valueOf = () => Buffer.from(crypto.randomBytes(24).toString('base64'));

async function fill(vault: Vault, from: number, to: number): Promise<void> {
  for (let start = from; start < to; start += 10_000) {
    const end = Math.min(to, start + 10_000);
    await vault.writeSecrets(Array.from({ length: end - start }, (_, k) => ({ path: pathOf(start + k), value: valueOf() })));
  }
}

/** Time `writes` durable writes and `reads` reads at random paths of a vault holding `size` secrets. */
async function sample(vault: Vault, size: number, writes: number, reads: number, into: { write: number[]; read: number[] }): Promise<void> {
  for (let k = 0; k < writes; k++) {
    const target = pathOf(crypto.randomInt(size));
    const value = valueOf();
    const t0 = performance.now();
    await vault.writeSecret(target, value);
    into.write.push(performance.now() - t0);
  }
  for (let k = 0; k < reads; k++) {
    const target = pathOf(crypto.randomInt(size));
    const t0 = performance.now();
    await vault.readSecret(target);
    into.read.push(performance.now() - t0);
  }
}

async function libraryFigures(): Promise<{ nodePath: string }> {
  console.log('\n== 1. Library API: durable write (one commit, fsynced) and read, by vault size ==');
  const sizes = QUICK ? [1_000, 10_000] : [1_000, 10_000, 100_000];
  console.log(`   one vault per size (${sizes.join(', ')} secrets, 100 per directory: groupG/dirD/secretN, 32-byte values), in one process;`);
  console.log('   after 200 warm-up writes each, 5 interleaved rounds of 200 writes and 1,000 reads at random paths per vault');
  const nodePath = path.join(root, 'node');
  const { node } = await KeynodeNode.create({ nodePath, password: PASSWORD });
  const vaults = new Map<number, Vault>();
  for (const size of sizes) {
    const vault = await node.vaults.createVault(`bench-${size}`);
    const t0 = performance.now();
    await fill(vault, 0, size);
    console.log(`   loaded ${size} secrets in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (let k = 0; k < 200; k++) await vault.writeSecret(pathOf(crypto.randomInt(size)), valueOf());
    vaults.set(size, vault);
  }
  const samples = new Map(sizes.map((size) => [size, { write: [] as number[], read: [] as number[] }]));
  for (let round = 0; round < 5; round++) {
    for (const size of sizes) await sample(vaults.get(size)!, size, 200, 1000, samples.get(size)!);
  }
  for (const size of sizes) {
    const { write, read } = samples.get(size)!;
    console.log(
      `   ${String(size).padStart(7)} secrets: write median ${ms(median(write))} (p90 ${ms(percentile(write, 0.9))}), read median ${ms(median(read))}`,
    );
  }
  console.log(`   store: ${(node.status().storeBytes / 1e6).toFixed(1)} MB`);
  const first = median(samples.get(sizes[0]!)!.write);
  const last = median(samples.get(sizes[sizes.length - 1]!)!.write);
  console.log(`   write growth ${sizes[0]} -> ${sizes[sizes.length - 1]} secrets: ${(last / first).toFixed(2)}x (target <= 1.5x)`);
  const tenK = samples.get(10_000)!;
  console.log(`   at 10,000 secrets: write ${ms(median(tenK.write))} (target <= 3 ms), read ${ms(median(tenK.read))} (target <= 0.3 ms)`);

  // For contrast: every secret in ONE directory makes each commit rewrite that whole tree.
  const flat = await node.vaults.createVault('flat');
  await flat.writeSecrets(Array.from({ length: 10_000 }, (_, i) => ({ path: `all/secret${i}`, value: valueOf() })));
  const flatTimes: number[] = [];
  for (let k = 0; k < 200; k++) {
    const t0 = performance.now();
    await flat.writeSecret(`all/secret${crypto.randomInt(10_000)}`, valueOf());
    flatTimes.push(performance.now() - t0);
  }
  console.log(`   (contrast) 10,000 secrets in one flat directory: write median ${ms(median(flatTimes))}: a commit rewrites the directory's tree`);
  node.close();
  return { nodePath };
}

async function unlockFigures(nodePath: string): Promise<void> {
  console.log('\n== 2. Unlock (default argon2id: 64 MiB, t=3) and open a vault ==');
  const times: number[] = [];
  for (let k = 0; k < 5; k++) {
    const t0 = performance.now();
    const node = await KeynodeNode.open({ nodePath, password: PASSWORD });
    const vault = await node.vaults.openVault(`bench-${QUICK ? 10_000 : 100_000}`);
    await vault.readSecret(pathOf(0));
    times.push(performance.now() - t0);
    node.close();
  }
  console.log(`   unlock + open store (${QUICK ? '10,000' : '100,000'}+ secrets) + open vault + first read: median ${ms(median(times))} (target <= 1 s)`);
}

function ensurePass(): boolean {
  if (spawnSync('pass', ['version'], { stdio: 'ignore' }).status === 0) return true;
  console.log('   installing Debian pass (apt-get install -y pass) ...');
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
  const install = spawnSync('apt-get', ['install', '-y', '-qq', 'pass'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return update.status === 0 && install.status === 0 && spawnSync('pass', ['version'], { stdio: 'ignore' }).status === 0;
}

let passMedians: { insert: number; show: number } | null = null;

async function passFigures(): Promise<void> {
  console.log(`\n== 3. keynode vs pass: the same ${PASS_COUNT} inserts and ${PASS_COUNT} reads ==`);
  if (!ensurePass()) {
    console.log('   pass is not installed and could not be installed here; skipped');
    return;
  }
  const gnupgHome = fs.mkdtempSync(path.join(root, 'gnupg-'));
  fs.chmodSync(gnupgHome, 0o700);
  const env = { ...process.env, GNUPGHOME: gnupgHome, PASSWORD_STORE_DIR: path.join(root, 'password-store') };
  execFileSync(
    'gpg',
    ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', 'keynode bench <bench@keynode.invalid>', 'default', 'default', 'never'],
    { env, stdio: 'ignore' },
  );
  execFileSync('pass', ['init', 'bench@keynode.invalid'], { env, stdio: 'ignore' });
  const names = Array.from({ length: PASS_COUNT }, (_, i) => `bench/dir${Math.floor(i / 100)}/secret${i}`);
  const values = names.map(() => crypto.randomBytes(24).toString('base64'));
  const passInsert: number[] = [];
  names.forEach((name, i) => {
    const t0 = performance.now();
    execFileSync('pass', ['insert', '-m', '-f', name], { env, input: values[i], stdio: ['pipe', 'ignore', 'ignore'] });
    passInsert.push(performance.now() - t0);
  });
  const passShow: number[] = [];
  names.forEach((name, i) => {
    const t0 = performance.now();
    const out = execFileSync('pass', ['show', name], { env, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    passShow.push(performance.now() - t0);
    if (out.trimEnd() !== values[i]) throw new Error(`pass returned a wrong value for ${name}`);
  });

  const { node } = await KeynodeNode.create({ nodePath: path.join(root, 'vs-pass'), password: PASSWORD });
  const vault = await node.vaults.createVault('bench');
  const knInsert: number[] = [];
  for (let i = 0; i < names.length; i++) {
    const t0 = performance.now();
    await vault.writeSecret(names[i]!, Buffer.from(values[i]!));
    knInsert.push(performance.now() - t0);
  }
  const knShow: number[] = [];
  for (let i = 0; i < names.length; i++) {
    const t0 = performance.now();
    const value = await vault.readSecret(names[i]!);
    knShow.push(performance.now() - t0);
    if (value.toString() !== values[i]) throw new Error(`keynode returned a wrong value for ${names[i]}`);
  }
  node.close();
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / 1000;
  console.log(`   pass insert: median ${ms(median(passInsert))}, total ${sum(passInsert).toFixed(1)} s   (a process per op: bash + gpg)`);
  console.log(`   pass show:   median ${ms(median(passShow))}, total ${sum(passShow).toFixed(1)} s`);
  console.log(`   keynode library write (durable commit): median ${ms(median(knInsert))}, total ${sum(knInsert).toFixed(2)} s`);
  console.log(`   keynode library read:                  median ${ms(median(knShow))}, total ${sum(knShow).toFixed(2)} s`);
  console.log(`   ratio keynode/pass: insert ${(median(knInsert) / median(passInsert)).toFixed(4)}, read ${(median(knShow) / median(passShow)).toFixed(4)}`);
  passMedians = { insert: median(passInsert), show: median(passShow) };

  // The CLI without an agent unlocks (argon2id) on every call; the agent (next issue) removes that.
  const cliEnv: NodeJS.ProcessEnv = { ...process.env, KEYNODE_PATH: path.join(root, 'vs-pass'), KEYNODE_PASSWORD: PASSWORD };
  delete cliEnv.NODE_EXTRA_CA_CERTS;
  const cli = path.resolve(import.meta.dirname, '../cli/keynode.cjs');
  const cliGet: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    execFileSync(process.execPath, [cli, 'secrets', 'get', `bench:${names[i]!}`], { env: cliEnv, stdio: ['ignore', 'ignore', 'inherit'] });
    cliGet.push(performance.now() - t0);
  }
  console.log(
    `   keynode CLI get without an agent (20 runs, NODE_EXTRA_CA_CERTS unset, default argon2id unlock each time): median ${ms(median(cliGet))}; ratio to pass show ${(median(cliGet) / median(passShow)).toFixed(2)}`,
  );
}

/** Wall time of one CLI invocation, NODE_EXTRA_CA_CERTS unset (it adds ~90 ms to every Node start here). */
function timeCli(args: string[], env: NodeJS.ProcessEnv, input?: string): number {
  const t0 = performance.now();
  execFileSync(process.execPath, [path.resolve(import.meta.dirname, '../cli/keynode.cjs'), ...args], {
    env,
    input,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'inherit'],
  });
  return performance.now() - t0;
}

async function agentFigures(): Promise<void> {
  console.log('\n== 4. With the agent: CLI invocations, one connection, memory ==');
  const nodePath = path.join(root, 'agent-node');
  const runtime = fs.mkdtempSync(path.join(root, 'run-'));
  const { node } = await KeynodeNode.create({ nodePath, password: PASSWORD });
  // 100 vaults of 1,000 secrets (one bulk commit each), made through the library first.
  for (let v = 0; v < 100; v++) {
    const vault = await node.vaults.createVault(`vault${v}`);
    await vault.writeSecrets(Array.from({ length: 1000 }, (_, i) => ({ path: `dir${Math.floor(i / 100)}/secret${i}`, value: valueOf() })));
  }
  node.close();
  const env: NodeJS.ProcessEnv = { ...process.env, KEYNODE_PATH: nodePath, KEYNODE_PASSWORD: PASSWORD, XDG_RUNTIME_DIR: runtime };
  delete env.NODE_EXTRA_CA_CERTS;
  const cli = path.resolve(import.meta.dirname, '../cli/keynode.cjs');
  const started = JSON.parse(execFileSync(process.execPath, [cli, 'agent', 'start', '--background', '--json'], { env }).toString()) as { pid: number };
  try {
    const noPassword = { ...env, KEYNODE_PASSWORD: '' };
    for (let k = 0; k < 5; k++) timeCli(['secrets', 'get', 'vault0:dir0/secret0'], noPassword); // warm the page cache
    const gets = Array.from({ length: 50 }, (_, k) => timeCli(['secrets', 'get', `vault${k % 100}:dir${k % 10}/secret${(k % 10) * 100}`], noPassword));
    const sets = Array.from({ length: 50 }, (_, k) => timeCli(['secrets', 'set', `vault${k % 100}:bench/set${k}`], noPassword, `value ${k}`));
    console.log(`   keynode secrets get (CLI via agent, 50 runs): median ${ms(median(gets))} (target <= 50 ms)`);
    console.log(`   keynode secrets set (CLI via agent, 50 runs): median ${ms(median(sets))} (target <= 60 ms)`);
    if (passMedians) {
      console.log(`   ratio to pass: get/show ${(median(gets) / passMedians.show).toFixed(2)}, set/insert ${(median(sets) / passMedians.insert).toFixed(2)}`);
    }
    const bare = Array.from({ length: 20 }, () => {
      const t0 = performance.now();
      execFileSync(process.execPath, ['-e', '0'], { env });
      return performance.now() - t0;
    });
    console.log(`   (for scale: bare \`node -e 0\` here: median ${ms(median(bare))})`);

    // 1,000 gets over one connection, through the typed client.
    const { connectClient } = await import('../client/KeynodeClient.js');
    process.env.XDG_RUNTIME_DIR = runtime;
    const client = await connectClient({ nodePath, password: async () => PASSWORD });
    const thousandGets = async () => {
      const t0 = performance.now();
      for (let k = 0; k < 1000; k++)
        await client.call('secrets.get', { vault: `vault${k % 100}`, path: `dir${Math.floor((k % 1000) / 100)}/secret${k % 1000}` });
      return (performance.now() - t0) / 1000;
    };
    const cold = await thousandGets(); // first touch of 100 vaults and 1,000 directories in the agent
    const warm = [await thousandGets(), await thousandGets(), await thousandGets()];
    client.close();
    console.log(
      `   1,000 secrets.get over one connection, sequential: ${median(warm).toFixed(3)} s warm (median of 3; target <= 0.5 s), ${cold.toFixed(3)} s on first touch of 100 vaults`,
    );

    // Memory with every vault opened and read.
    const status = fs.readFileSync(`/proc/${started.pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024;
    console.log(`   agent RSS serving 100 vaults x 1,000 secrets (all opened): ${rss.toFixed(0)} MB (peak ${hwm.toFixed(0)} MB; target <= 150 MB)`);
  } finally {
    process.kill(started.pid, 'SIGTERM');
  }
}

const ONLY = args.includes('--only') ? new Set((args[args.indexOf('--only') + 1] ?? '').split(',')) : null;
const wanted = (section: string) => ONLY === null || ONLY.has(section);

try {
  console.log(`keynode bench, node ${process.version}, ${os.cpus().length} cores, ${new Date().toISOString()}`);
  if (wanted('library') || wanted('unlock')) {
    const { nodePath } = await libraryFigures();
    if (wanted('unlock')) await unlockFigures(nodePath);
  }
  if (!QUICK && wanted('pass')) await passFigures();
  if (wanted('agent')) await agentFigures();
  const options = { quick: QUICK };
  if (wanted('storage')) await (await import('./storage.js')).benchStorage(options);
  if (wanted('trees')) await (await import('./trees.js')).benchTrees(options);
  if (wanted('history')) await (await import('./history.js')).benchHistory(options);
  if (wanted('listing')) await (await import('./listing.js')).benchListing(options);
  if (wanted('largeValues')) await (await import('./largeValues.js')).benchLargeValues(options);
  if (wanted('cli')) await (await import('./cli.js')).benchCli(options);
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
