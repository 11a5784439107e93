/**
 * Streamed listings (issue 7): `secrets ls` of N secrets (flat: one directory; nested: 100
 * directories of 10 of about N/1000 each) through the CLI, without an agent and with one: time
 * to the first line, total time, the client's peak RSS, and the agent's peak RSS above its idle
 * RSS (VmHWM reset through /proc/PID/clear_refs before each run). Then `vaults log` of a vault
 * with many commits through the agent. Median of repeats. Prints, never asserts.
 * Standalone: node dist/bench/listing.js [--quick]
 */
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { KeynodeNode } from '../node/KeynodeNode.js';

const DIST = path.resolve(import.meta.dirname, '..');
const CLI = path.join(DIST, 'cli', 'keynode.cjs');
const PASSWORD = 'bench';
const MiB = 1024 * 1024;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

type Shape = 'flat' | 'nested';
const nameOf = (shape: Shape, i: number) =>
  shape === 'flat' ? `s${String(i).padStart(7, '0')}` : `d${i % 100}/e${Math.floor(i / 100) % 10}/s${String(i).padStart(7, '0')}`;

async function buildNode(nodePath: string, shape: Shape, count: number, commits = 0): Promise<number> {
  const started = performance.now();
  const { node } = await KeynodeNode.create({ nodePath, password: PASSWORD, kdf: { memoryKib: 8192, iterations: 1 } });
  try {
    const vault = await node.vaults.createVault('v');
    const value = Buffer.from('x');
    const batch = 200_000;
    for (let at = 0; at < count; at += batch) {
      await vault.writeSecrets(Array.from({ length: Math.min(batch, count - at) }, (_, k) => ({ path: nameOf(shape, at + k), value })));
    }
    for (let i = 0; i < commits; i++) await vault.writeSecret(`c/${i % 50}`, Buffer.from(String(i)), { message: `commit ${i}` });
  } finally {
    node.close();
  }
  return performance.now() - started;
}

/** kB → bytes of a /proc/PID/status field. */
function procStatus(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : NaN;
}

interface Run {
  firstMs: number;
  totalMs: number;
  lines: number;
  clientPeak: number;
}

/** One CLI run, stdout drained as fast as it comes; the client's peak RSS from /proc (polled: it is a high-water mark). */
function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let firstMs = NaN;
    let lines = 0;
    let clientPeak = 0;
    let stderr = '';
    const poll = setInterval(() => {
      try {
        const peak = procStatus(child.pid!, 'VmHWM');
        if (peak > clientPeak) clientPeak = peak;
      } catch {
        /* gone */
      }
    }, 5);
    child.stdout.on('data', (chunk: Buffer) => {
      if (Number.isNaN(firstMs)) firstMs = performance.now() - start;
      for (let at = chunk.indexOf(10); at >= 0; at = chunk.indexOf(10, at + 1)) lines++;
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      if (code !== 0) reject(new Error(`keynode ${args.join(' ')} failed: ${stderr.trim()}`));
      else resolve({ firstMs, totalMs: performance.now() - start, lines, clientPeak });
    });
  });
}

const fmtMs = (value: number) => `${value < 100 ? value.toFixed(1) : value.toFixed(0)} ms`;
const fmtMiB = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;

async function measureListing(dir: string, shape: Shape, count: number, repeats: number): Promise<void> {
  const nodePath = path.join(dir, `${shape}-${count}`);
  const built = await buildNode(nodePath, shape, count);
  const env: NodeJS.ProcessEnv = { ...process.env, KEYNODE_PATH: nodePath, KEYNODE_PASSWORD: PASSWORD, XDG_RUNTIME_DIR: dir };
  delete env.NODE_EXTRA_CA_CERTS;
  const label = `${shape} ${count.toLocaleString('en')}`;
  const local: Run[] = [];
  for (let i = 0; i < repeats; i++) local.push(await runCli(['secrets', 'ls', 'v'], env));
  const started = JSON.parse(execFileSync(process.execPath, [CLI, 'agent', 'start', '--background', '--json'], { env }).toString()) as { pid: number };
  const agentRuns: Array<Run & { agentAboveIdle: number }> = [];
  const floor: Run[] = [];
  try {
    // What any command costs before it can print (a Node start, the command's modules, a round trip).
    for (let i = 0; i < repeats; i++) floor.push(await runCli(['vaults', 'list'], env));
    for (let i = 0; i < repeats; i++) {
      const idle = procStatus(started.pid, 'VmRSS');
      fs.writeFileSync(`/proc/${started.pid}/clear_refs`, '5'); // VmHWM := VmRSS
      const run = await runCli(['secrets', 'ls', 'v'], env);
      agentRuns.push({ ...run, agentAboveIdle: procStatus(started.pid, 'VmHWM') - idle });
    }
  } finally {
    execFileSync(process.execPath, [CLI, 'agent', 'stop'], { env, stdio: 'ignore' });
  }
  const row = (name: string, runs: Run[], extra = '') =>
    console.log(
      `   ${`${label}, ${name}`.padEnd(30)} first line ${fmtMs(median(runs.map((r) => r.firstMs))).padStart(8)}, total ${fmtMs(median(runs.map((r) => r.totalMs))).padStart(8)}, client peak ${fmtMiB(median(runs.map((r) => r.clientPeak))).padStart(8)}${extra}  (${runs[0]!.lines.toLocaleString('en')} lines)`,
    );
  console.log(
    `   (${label}: built in ${(built / 1000).toFixed(1)} s; \`vaults list\` through the agent, the floor of any command: ${fmtMs(median(floor.map((r) => r.totalMs)))})`,
  );
  row('no agent', local);
  // The first run loads the trees into the agent's cache (bounded by bytes); later runs find them there.
  row(
    'agent',
    agentRuns,
    `, agent peak above idle ${fmtMiB(agentRuns[0]!.agentAboveIdle)} first run, ${fmtMiB(median(agentRuns.map((r) => r.agentAboveIdle)))} median`,
  );
}

async function measureLog(dir: string, commits: number, repeats: number): Promise<void> {
  const nodePath = path.join(dir, `log-${commits}`);
  await buildNode(nodePath, 'flat', 0, commits);
  const env: NodeJS.ProcessEnv = { ...process.env, KEYNODE_PATH: nodePath, KEYNODE_PASSWORD: PASSWORD, XDG_RUNTIME_DIR: dir };
  delete env.NODE_EXTRA_CA_CERTS;
  const started = JSON.parse(execFileSync(process.execPath, [CLI, 'agent', 'start', '--background', '--json'], { env }).toString()) as { pid: number };
  try {
    await runCli(['vaults', 'log', 'v'], env); // the history index is built on first use
    const runs: Array<Run & { agentAboveIdle: number }> = [];
    for (let i = 0; i < repeats; i++) {
      const idle = procStatus(started.pid, 'VmRSS');
      fs.writeFileSync(`/proc/${started.pid}/clear_refs`, '5');
      const run = await runCli(['vaults', 'log', 'v', '--json'], env);
      runs.push({ ...run, agentAboveIdle: procStatus(started.pid, 'VmHWM') - idle });
    }
    console.log(
      `   vaults log --json, ${commits.toLocaleString('en')} commits, agent: first line ${fmtMs(median(runs.map((r) => r.firstMs)))}, total ${fmtMs(median(runs.map((r) => r.totalMs)))}, client peak ${fmtMiB(median(runs.map((r) => r.clientPeak)))}, agent peak above idle ${fmtMiB(median(runs.map((r) => r.agentAboveIdle)))}`,
    );
  } finally {
    execFileSync(process.execPath, [CLI, 'agent', 'stop'], { env, stdio: 'ignore' });
  }
}

export async function benchListing(options: { quick: boolean }): Promise<void> {
  const sizes = options.quick ? [10_000, 100_000] : [100_000, 1_000_000];
  const repeats = options.quick ? 3 : 3;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keynode-bench-listing-'));
  try {
    console.log(`\n== Listings through the CLI: secrets ls (median of ${repeats}; stdout drained as it comes; NODE_EXTRA_CA_CERTS unset) ==`);
    for (const shape of ['flat', 'nested'] as const) {
      for (const count of sizes) await measureListing(dir, shape, count, repeats);
    }
    await measureLog(dir, options.quick ? 1_000 : 10_000, repeats);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await benchListing({ quick: process.argv.includes('--quick') });
}
