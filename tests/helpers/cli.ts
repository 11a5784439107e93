import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect } from 'vitest';
import { tempDir, TEST_PASSWORD } from './index.js';

export const CLI = path.resolve(import.meta.dirname, '../../dist/cli/keynode.cjs');

if (!fs.existsSync(CLI)) throw new Error(`build first (npm run build): ${CLI} is missing`);

export interface CliResult {
  code: number;
  stdout: Buffer;
  stderr: string;
  /** stdout as UTF-8. */
  out: string;
  json: () => any;
}

export interface CliOptions {
  input?: string | Buffer;
  env?: Record<string, string | undefined>;
}

/** A sandbox for CLI runs: its own node path, home and runtime dir; no prompts. */
export function cliSandbox() {
  const root = tempDir('keynode-e2e-');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: path.join(root, 'home'),
    KEYNODE_PATH: path.join(root, 'node'),
    KEYNODE_PASSWORD: TEST_PASSWORD,
    KEYNODE_NO_PROMPT: '1',
    XDG_RUNTIME_DIR: path.join(root, 'run'),
  };
  fs.mkdirSync(env.HOME!, { recursive: true });
  fs.mkdirSync(env.XDG_RUNTIME_DIR!, { recursive: true, mode: 0o700 });
  const run = (args: string[], options: CliOptions = {}): CliResult => {
    const result = spawnSync(process.execPath, [CLI, ...args], {
      input: options.input ?? '',
      env: Object.fromEntries(Object.entries({ ...env, ...options.env }).filter(([, v]) => v !== undefined)),
      maxBuffer: 64 * 1024 * 1024,
    });
    const stdout = result.stdout;
    return {
      code: result.status ?? -1,
      stdout,
      stderr: result.stderr.toString(),
      out: stdout.toString('utf8'),
      json: () => JSON.parse(stdout.toString('utf8')),
    };
  };
  /** Run without blocking (for concurrent CLIs). */
  const runAsync = (args: string[], options: CliOptions = {}): Promise<CliResult> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], {
        env: Object.fromEntries(Object.entries({ ...env, ...options.env }).filter(([, v]) => v !== undefined)),
      });
      const out: Buffer[] = [];
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin.end(options.input ?? '');
      child.on('close', (code) => {
        const stdout = Buffer.concat(out);
        resolve({ code: code ?? -1, stdout, stderr, out: stdout.toString('utf8'), json: () => JSON.parse(stdout.toString('utf8')) });
      });
    });
  /** Run and expect success; returns the result. */
  const ok = (args: string[], options: CliOptions = {}): CliResult => {
    const result = run(args, options);
    expect(result.code, `keynode ${args.join(' ')}\n${result.stderr}`).toBe(0);
    return result;
  };
  /** Create the node with test KDF parameters. */
  const init = () =>
    ok(['init', '--kdf-memory', '8192', '--kdf-iterations', '1', '--json']).json() as { nodeId: string; recoveryPhrase: string; nodePath: string };
  return { root, env, run, runAsync, ok, init, nodePath: env.KEYNODE_PATH! };
}

/** Start a long-running process that holds the node open; resolves once it holds the lock. */
export function holdNode(nodePath: string) {
  const script = `import { KeynodeNode } from ${JSON.stringify(path.resolve(import.meta.dirname, '../../dist/index.js'))};
    await KeynodeNode.open({ nodePath: ${JSON.stringify(nodePath)}, password: ${JSON.stringify(TEST_PASSWORD)} });
    process.stdout.write('READY\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('READY') && resolve()));
  return { child, ready };
}

const backgroundAgents: number[] = [];
afterEach(() => {
  while (backgroundAgents.length) {
    try {
      process.kill(backgroundAgents.pop()!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/** Kill this agent (or any process) after the test, whatever happens. */
export function killAfterTest(pid: number): void {
  backgroundAgents.push(pid);
}

/** Start a background agent for the sandbox's node; it is killed after the test whatever happens. */
export function startAgent(cli: ReturnType<typeof cliSandbox>, ...flags: string[]): { pid: number; socket: string; log: string } {
  const started = cli.ok(['agent', 'start', '--background', '--json', ...flags]).json() as { pid: number; socket: string; log: string };
  killAfterTest(started.pid);
  return started;
}

/** The token of the CLI's session with the sandbox's agent (for raw socket requests in tests). */
export function sessionToken(cli: ReturnType<typeof cliSandbox>): string {
  const dir = path.join(cli.env.XDG_RUNTIME_DIR!, 'keynode');
  const file = fs.readdirSync(dir).find((name) => name.startsWith('session-'))!;
  return (JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as { token: string }).token;
}
