import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentConnection } from '../../src/client/AgentConnection.js';
import { readSession } from '../../src/client/sessionFile.js';
import { isKeynodeError } from '../../src/errors.js';
import { CLI, cliSandbox, startAgent } from '../helpers/cli.js';

const MiB = 1024 * 1024;
const VALUE_BYTES = 300 * MiB;
/** Memory above idle a process may use for a value of any size (the target is 64 MB; slack for GC timing). */
const MEMORY_BOUND_BYTES = 128 * MiB;

/** A file of `bytes` bytes, each MiB different (no two chunks alike). */
function valueFile(dir: string, bytes: number): { file: string } {
  const file = path.join(dir, 'value.bin');
  const block = crypto.randomBytes(MiB);
  const fd = fs.openSync(file, 'w', 0o600);
  for (let at = 0; at < bytes; at += MiB) {
    block.writeUInt32BE(at / MiB, 0);
    fs.writeSync(fd, block.subarray(0, Math.min(MiB, bytes - at)));
  }
  fs.closeSync(fd);
  return { file };
}

function sha256Of(file: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buffer = Buffer.allocUnsafe(4 * MiB);
  for (let read = fs.readSync(fd, buffer); read > 0; read = fs.readSync(fd, buffer)) hash.update(buffer.subarray(0, read));
  fs.closeSync(fd);
  return hash.digest('hex');
}

/**
 * Make the file another value (its bytes 4..7 say which) and return its SHA-256. Each test value
 * differs: storing the same large value twice stages its chunks and drops them, and the store's
 * compaction of that space would land in whichever command comes next (measured apart).
 */
function variant(file: string, n: number): string {
  const fd = fs.openSync(file, 'r+');
  const mark = Buffer.alloc(4);
  mark.writeUInt32BE(n);
  fs.writeSync(fd, mark, 0, 4, 4);
  fs.closeSync(fd);
  return sha256Of(file);
}

/** Peak RSS of a process, from /proc (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const line = fs
    .readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmHWM:'))!;
  return Number(/(\d+)/.exec(line)![1]) * 1024;
}

/** Run the CLI with stdin from `stdin` (a file), stdout to `stdout` (a file); its peak RSS reported by a preload. */
function runWithFiles(
  cli: ReturnType<typeof cliSandbox>,
  args: string[],
  io: { stdin?: string; stdout?: string },
): { code: number; stderr: string; stdout: string; maxRssBytes: number } {
  const rssFile = path.join(cli.root, `rss-${crypto.randomUUID()}`);
  const preload = path.join(cli.root, 'rss.cjs');
  fs.writeFileSync(
    preload,
    `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS * 1024)));`,
  );
  const stdin = io.stdin ? fs.openSync(io.stdin, 'r') : 'ignore';
  const stdout = io.stdout ? fs.openSync(io.stdout, 'w', 0o600) : 'pipe';
  try {
    const result = spawnSync(process.execPath, ['-r', preload, CLI, ...args], { env: cli.env, stdio: [stdin, stdout, 'pipe'], maxBuffer: 16 * MiB });
    return {
      code: result.status ?? -1,
      stderr: result.stderr.toString(),
      stdout: result.stdout ? result.stdout.toString() : '',
      maxRssBytes: Number(fs.readFileSync(rssFile, 'utf8')),
    };
  } finally {
    if (typeof stdin === 'number') fs.closeSync(stdin);
    if (typeof stdout === 'number') fs.closeSync(stdout);
  }
}

function commitsOf(cli: ReturnType<typeof cliSandbox>, vault: string): number {
  return (cli.ok(['vaults', 'log', vault, '--json']).json() as { commits: unknown[] }).commits.length;
}

describe('large values through the CLI (e2e)', () => {
  it('set --file, set from stdin (a pipe and a file) and get > file, 300 MiB, byte-identical, in bounded memory, with and without an agent', async () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'app']);
    const { file } = valueFile(cli.root, VALUE_BYTES);
    const sha256: Record<string, string> = {};
    const out = path.join(cli.root, 'out.bin');

    cli.ok(['secrets', 'set', 'app:small'], { input: 'tiny' });
    // The CLI's own idle: a small get. The first open after a large write replays the log's tail
    // (the store's cost, not the value's: measured separately), so the second one is the idle.
    const idleClient = () => {
      runWithFiles(cli, ['secrets', 'get', 'app:small'], { stdout: `${out}.small` });
      return runWithFiles(cli, ['secrets', 'get', 'app:small'], { stdout: `${out}.small` }).maxRssBytes;
    };
    let idle = idleClient();
    const check = (result: ReturnType<typeof runWithFiles>, what: string) => {
      expect(result.code, `${what}: ${result.stderr}`).toBe(0);
      expect(result.maxRssBytes - idle, `${what}: client memory above idle`).toBeLessThan(MEMORY_BOUND_BYTES);
      idle = idleClient();
    };

    // Without an agent.
    sha256['local-file'] = variant(file, 1);
    const localFile = runWithFiles(cli, ['secrets', 'set', 'app:local-file', '--file', file, '--json'], {});
    check(localFile, 'local set --file');
    expect(JSON.parse(localFile.stdout)).toMatchObject({ vault: 'app', path: 'local-file', bytes: VALUE_BYTES, changed: true });
    sha256['local-stdin'] = variant(file, 2);
    check(runWithFiles(cli, ['secrets', 'set', 'app:local-stdin'], { stdin: file }), 'local set < file');
    for (const name of ['local-file', 'local-stdin']) {
      check(runWithFiles(cli, ['secrets', 'get', `app:${name}`], { stdout: out }), `local get ${name}`);
      expect(sha256Of(out), name).toBe(sha256[name]);
    }

    // Through an agent: its peak above its idle stays bounded too.
    const agent = startAgent(cli);
    cli.ok(['secrets', 'get', 'app:small']);
    const agentIdle = peakRss(agent.pid);
    sha256['agent-file'] = variant(file, 3);
    const viaFile = runWithFiles(cli, ['secrets', 'set', 'app:agent-file', '--file', file, '--json'], {});
    check(viaFile, 'agent set --file');
    expect(Object.keys(JSON.parse(viaFile.stdout))).toEqual(['vault', 'path', 'bytes', 'commit', 'changed']);
    // stdin as a pipe (size unknown until the end): through the shell.
    sha256['agent-pipe'] = variant(file, 4);
    const piped = spawnSync('sh', ['-c', `cat "$0" | "${process.execPath}" "${CLI}" secrets set app:agent-pipe --json`, file], { env: cli.env });
    expect(piped.status, piped.stderr.toString()).toBe(0);
    expect(JSON.parse(piped.stdout.toString())).toMatchObject({ bytes: VALUE_BYTES, changed: true });
    for (const name of ['agent-file', 'agent-pipe', 'local-file']) {
      check(runWithFiles(cli, ['secrets', 'get', `app:${name}`], { stdout: out }), `agent get ${name}`);
      expect(sha256Of(out), name).toBe(sha256[name]);
    }
    expect(peakRss(agent.pid) - agentIdle, 'agent memory above idle').toBeLessThan(MEMORY_BOUND_BYTES);
    fs.rmSync(out);
    fs.rmSync(file);
  }, 300_000);

  it('a client killed mid-upload leaves no commit (agent and in process); keynode check stays ok', async () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'app']);
    const killMidUpload = async () => {
      const before = commitsOf(cli, 'app');
      const child = spawn(process.execPath, [CLI, 'secrets', 'set', 'app:partial'], { env: cli.env, stdio: ['pipe', 'ignore', 'pipe'] });
      const piece = Buffer.alloc(MiB, 7);
      // 24 MiB: past the large-value threshold, so chunks are staged; then the client dies.
      for (let i = 0; i < 24; i++) if (!child.stdin.write(piece)) await new Promise((resolve) => child.stdin.once('drain', resolve));
      await new Promise((resolve) => setTimeout(resolve, 300));
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('close', resolve));
      // The agent notices the closed connection and drops the upload.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(commitsOf(cli, 'app')).toBe(before);
      expect(cli.run(['secrets', 'get', 'app:partial']).code).not.toBe(0);
      // Chunks staged before the kill may stay as orphans (space only, never damage).
      const report = cli.ok(['check', '--json']).json() as { ok: boolean; problems: Array<{ damage: boolean; kind: string }> };
      expect(report.ok).toBe(true);
      for (const problem of report.problems) expect(problem).toMatchObject({ damage: false, kind: 'orphan-record' });
    };
    await killMidUpload();
    startAgent(cli);
    await killMidUpload();
  }, 120_000);

  it('the agent refuses a body of another size than declared, and chunks of no upload; small values keep secrets.set/secrets.get', async () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'app']);
    const agent = startAgent(cli);
    cli.ok(['secrets', 'set', 'app:small'], { input: 'v' }); // signs in: a session file
    const runtime = process.env.XDG_RUNTIME_DIR;
    process.env.XDG_RUNTIME_DIR = cli.env.XDG_RUNTIME_DIR;
    const token = readSession(cli.nodePath)?.token;
    if (runtime === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = runtime;
    expect(token).toBeDefined();
    const connection = (await AgentConnection.connect(agent.socket))!;
    try {
      await connection.request('node.status', {}, token);
      const before = commitsOf(cli, 'app');
      async function* pieces(count: number) {
        for (let i = 0; i < count; i++) yield Buffer.alloc(MiB, i);
      }
      const short = await connection
        .upload('secrets.setStream', { vault: 'app', path: 'big', size: 10 * MiB }, pieces(6), token)
        .catch((error: unknown) => error);
      expect(isKeynodeError(short, 'ERR_INVALID_ARGUMENT')).toBe(true);
      const long = await connection
        .upload('secrets.setStream', { vault: 'app', path: 'big', size: 5 * MiB }, pieces(8), token)
        .catch((error: unknown) => error);
      expect(isKeynodeError(long, 'ERR_INVALID_ARGUMENT')).toBe(true);
      const missing = await connection.upload('secrets.setStream', { vault: 'nope', path: 'big' }, pieces(8), token).catch((error: unknown) => error);
      expect(isKeynodeError(missing, 'ERR_VAULT_NOT_FOUND')).toBe(true);
      expect(commitsOf(cli, 'app')).toBe(before);
      // The connection is still good: an exact upload lands.
      const done = await connection.upload('secrets.setStream', { vault: 'app', path: 'big', size: 6 * MiB }, pieces(6), token);
      expect(done.changed).toBe(true);
      expect(commitsOf(cli, 'app')).toBe(before + 1);
      // Locking aborts an upload whose client went quiet (it must not hold the node open): ERR_AGENT_LOCKED, nothing stored.
      const stalled = connection
        .upload(
          'secrets.setStream',
          { vault: 'app', path: 'stalled' },
          (async function* () {
            yield Buffer.alloc(5 * MiB, 1);
            await new Promise((resolve) => setTimeout(resolve, 60_000));
          })(),
          token,
        )
        .catch((error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 300));
      cli.ok(['agent', 'lock']);
      expect(isKeynodeError(await stalled, 'ERR_AGENT_LOCKED')).toBe(true);
      expect(commitsOf(cli, 'app')).toBe(before + 1);
    } finally {
      connection.close();
    }
    // The wire of small values: one secrets.set, one secrets.get, nothing streamed (the agent log names the methods).
    cli.ok(['secrets', 'set', 'app:small2'], { input: 'w' });
    expect(cli.ok(['secrets', 'get', 'app:small2', '--json']).json()).toMatchObject({ value: 'w' });
    const log = fs.readFileSync(agent.log, 'utf8');
    expect(log).toMatch(/secrets\.set ok/);
    expect(log).toMatch(/secrets\.get ok/);
    expect(log.match(/secrets\.setStream ok/g)).toHaveLength(1);
  }, 60_000);
});
