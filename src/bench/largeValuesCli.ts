/**
 * Large values, the CLI half: `secrets set --file F`, `secrets set < pipe` and `secrets get > F`
 * with the built CLI (dist/cli/keynode.cjs), through a running agent and without one, at 100 MiB
 * and 1 GiB (--quick: 100 MiB), on the disk (os.tmpdir()). Per run: MB/s (wall time of the
 * process), the CLI's peak RSS above a small `get` (maxRSS, reported by a preload) and the agent's
 * (VmHWM) above its idle. Prints figures, never asserts. Called from bench/largeValues.ts.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const MIB = 1024 * 1024;
const CLI = path.resolve(import.meta.dirname, '..', 'cli', 'keynode.cjs');
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const mbps = (bytes: number, ms: number) => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
const mib = (bytes: number) => `${(bytes / MIB).toFixed(0)} MiB`;

function peakRss(pid: number): number {
  const line = fs
    .readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmHWM:'));
  return line ? Number(/(\d+)/.exec(line)![1]) * 1024 : 0;
}

interface Sandbox {
  root: string;
  env: NodeJS.ProcessEnv;
  preload: string;
}

function sandbox(): Sandbox {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keynode-bench-cli-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: path.join(root, 'home'),
    KEYNODE_PATH: path.join(root, 'node'),
    KEYNODE_PASSWORD: 'bench-password',
    KEYNODE_NO_PROMPT: '1',
    XDG_RUNTIME_DIR: path.join(root, 'run'),
  };
  fs.mkdirSync(env.HOME!, { recursive: true });
  fs.mkdirSync(env.XDG_RUNTIME_DIR!, { recursive: true, mode: 0o700 });
  const preload = path.join(root, 'rss.cjs');
  fs.writeFileSync(
    preload,
    `process.on('exit', () => { if (process.env.KEYNODE_BENCH_RSS) require('fs').writeFileSync(process.env.KEYNODE_BENCH_RSS, String(process.resourceUsage().maxRSS * 1024)); });`,
  );
  return { root, env, preload };
}

/** Run the CLI; stdin from a file or a shell pipe (`cat F |`), stdout to a file. Wall ms and peak RSS. */
function run(box: Sandbox, args: string[], io: { stdinFile?: string; pipeFrom?: string; stdoutFile?: string } = {}): { ms: number; rss: number; ok: boolean } {
  const rssFile = path.join(box.root, 'rss');
  const env = { ...box.env, KEYNODE_BENCH_RSS: rssFile };
  const stdin = io.stdinFile ? fs.openSync(io.stdinFile, 'r') : 'ignore';
  const stdout = io.stdoutFile ? fs.openSync(io.stdoutFile, 'w', 0o600) : 'ignore';
  const started = performance.now();
  const result = io.pipeFrom
    ? spawnSync('sh', ['-c', `f="$0"; p="$1"; c="$2"; shift 2; cat "$f" | "${process.execPath}" -r "$p" "$c" "$@"`, io.pipeFrom, box.preload, CLI, ...args], {
        env,
        stdio: ['ignore', stdout, 'pipe'],
      })
    : spawnSync(process.execPath, ['-r', box.preload, CLI, ...args], { env, stdio: [stdin, stdout, 'pipe'] });
  const ms = performance.now() - started;
  if (typeof stdin === 'number') fs.closeSync(stdin);
  if (typeof stdout === 'number') fs.closeSync(stdout);
  if (result.status !== 0) console.log(`   (keynode ${args.join(' ')} failed: ${result.stderr?.toString().trim().split('\n')[0]})`);
  return { ms, rss: Number(fs.readFileSync(rssFile, 'utf8')), ok: result.status === 0 };
}

function valueFile(root: string, size: number): string {
  const file = path.join(root, 'value.bin');
  const block = crypto.randomBytes(MIB);
  const fd = fs.openSync(file, 'w', 0o600);
  for (let at = 0; at < size; at += MIB) {
    block.writeUInt32BE(at / MIB, 0);
    fs.writeSync(fd, block.subarray(0, Math.min(MIB, size - at)));
  }
  fs.closeSync(fd);
  return file;
}

/** Each stored value differs (a mark in bytes 4..7): a repeated large value would be staged, then dropped. */
function mark(file: string, n: number): void {
  const fd = fs.openSync(file, 'r+');
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(n);
  fs.writeSync(fd, bytes, 0, 4, 4);
  fs.closeSync(fd);
}

export async function benchLargeValuesCli(options: { quick: boolean }): Promise<void> {
  console.log('\n== Large values through the CLI (built dist/cli/keynode.cjs; wall time of the process; peaks above idle) ==');
  if (!fs.existsSync(CLI)) {
    console.log('   (skipped: build first, npm run build)');
    return;
  }
  const sizes = options.quick ? [100 * MIB] : [100 * MIB, 1024 * MIB];
  const repeats = (size: number) => (size > 512 * MIB ? 1 : 3);
  for (const via of ['no agent', 'agent'] as const) {
    const box = sandbox();
    let agentPid: number | null = null;
    try {
      const init = spawnSync(process.execPath, [CLI, 'init', '--kdf-memory', '8192', '--kdf-iterations', '1'], { env: box.env });
      if (init.status !== 0) throw new Error(init.stderr.toString());
      spawnSync(process.execPath, [CLI, 'vaults', 'create', 'bench'], { env: box.env });
      spawnSync(process.execPath, [CLI, 'secrets', 'set', 'bench:small'], { env: box.env, input: 'v' });
      if (via === 'agent') {
        const started = spawnSync(process.execPath, [CLI, 'agent', 'start', '--background', '--json'], { env: box.env });
        agentPid = (JSON.parse(started.stdout.toString()) as { pid: number }).pid;
      }
      // VmHWM is a high-water mark: measured once at idle, the figure per size is the peak so far.
      const agentIdle = agentPid === null ? 0 : peakRss(agentPid);
      let n = 0;
      for (const size of sizes) {
        const file = valueFile(box.root, size);
        const out = path.join(box.root, 'out.bin');
        const idle = () => {
          run(box, ['secrets', 'get', 'bench:small']); // the first open after a large write replays the log's tail
          return run(box, ['secrets', 'get', 'bench:small']).rss;
        };
        const figures: Record<string, { ms: number[]; rss: number[] }> = {
          'set --file': { ms: [], rss: [] },
          'set < pipe': { ms: [], rss: [] },
          'get > file': { ms: [], rss: [] },
        };
        for (let i = 0; i < repeats(size); i++) {
          for (const kind of ['set --file', 'set < pipe'] as const) {
            mark(file, ++n);
            const base = idle();
            const args = kind === 'set --file' ? ['secrets', 'set', `bench:v${n}`, '--file', file] : ['secrets', 'set', `bench:v${n}`];
            const result = run(box, args, kind === 'set < pipe' ? { pipeFrom: file } : {});
            figures[kind]!.ms.push(result.ms);
            figures[kind]!.rss.push(result.rss - base);
          }
          const base = idle();
          const result = run(box, ['secrets', 'get', `bench:v${n}`], { stdoutFile: out });
          figures['get > file']!.ms.push(result.ms);
          figures['get > file']!.rss.push(result.rss - base);
          fs.rmSync(out, { force: true });
        }
        const agentPeak = agentPid === null ? '' : `; agent peak above idle so far ${mib(peakRss(agentPid) - agentIdle)}`;
        const parts = Object.entries(figures).map(([kind, f]) => `${kind} ${mbps(size, median(f.ms))} (client +${mib(Math.max(...f.rss))})`);
        console.log(`   ${via}, ${mib(size)} (median of ${repeats(size)}): ${parts.join(', ')}${agentPeak}`);
        fs.rmSync(file, { force: true });
      }
    } finally {
      if (agentPid !== null) {
        try {
          process.kill(agentPid, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      fs.rmSync(box.root, { recursive: true, force: true });
    }
  }
  console.log('   targets: >= 200 MB/s set and get, <= 64 MB above idle whatever the size');
}
