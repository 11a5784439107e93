import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CLI, cliSandbox } from '../helpers/cli.js';
import { TEST_PASSWORD } from '../helpers/index.js';

const agents: number[] = [];
afterEach(() => {
  while (agents.length) {
    try {
      process.kill(agents.pop()!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

function startAgent(cli: ReturnType<typeof cliSandbox>, ...flags: string[]): { pid: number; socket: string; log: string } {
  const started = cli.ok(['agent', 'start', '--background', '--json', ...flags]).json();
  agents.push(started.pid);
  return started;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Send raw frames on the agent socket and collect the replies (one per frame that ends in a newline). */
function exchange(socketPath: string, payload: Buffer | string, expectReplies: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(text.split('\n').filter(Boolean));
    }, 3000);
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.split('\n').filter(Boolean).length >= expectReplies) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text.split('\n').filter(Boolean));
      }
    });
    socket.on('error', reject);
    socket.write(payload);
  });
}

function seed(cli: ReturnType<typeof cliSandbox>) {
  cli.init();
  cli.ok(['vaults', 'create', 'app']);
  cli.ok(['secrets', 'set', 'app:db/password'], { input: 'pw-one' });
  cli.ok(['secrets', 'set', 'app:db/password'], { input: 'pw-two' });
  cli.ok(['secrets', 'set', 'app:api/key'], { input: 'k-123' });
}

describe('keynode agent (separate process, built binary)', () => {
  it('serves every command with the same output and errors as the in-process CLI', () => {
    const cli = cliSandbox();
    seed(cli);
    const commands = [
      ['secrets', 'get', 'app:db/password'],
      ['secrets', 'get', 'app:db/password', '--json'],
      ['secrets', 'get', 'app:db/password', '--version', 'HEAD~2'],
      ['secrets', 'ls', 'app', '--tree'],
      ['secrets', 'ls', 'app', '--json'],
      ['secrets', 'stat', 'app:api', '--json'],
      ['vaults', 'list', '--json'],
      ['vaults', 'diff', 'app', 'HEAD~2', '--show-values'],
      ['secrets', 'env', 'app:db', '--format', 'dotenv'],
      ['secrets', 'get', 'app:missing'],
      ['secrets', 'get', 'nope:x', '--json'],
      ['secrets', 'get', 'app:../x'],
    ];
    const local = commands.map((c) => cli.run(c));
    const { pid, socket } = startAgent(cli);
    expect(fs.statSync(socket).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(`/proc/${pid}/limits`, 'utf8')).toMatch(/Max core file size\s+0\s+0/);
    const status = cli.ok(['agent', 'status', '--json']).json();
    expect(status).toMatchObject({ running: true, pid, locked: false, sessions: 1 });
    const viaAgent = commands.map((c) => cli.run(c, { env: { KEYNODE_PASSWORD: undefined } }));
    viaAgent.forEach((result, i) => {
      expect({ code: result.code, out: result.out, err: result.stderr }, commands[i]!.join(' ')).toEqual({ code: local[i]!.code, out: local[i]!.out, err: local[i]!.stderr });
    });
    // Writes through the agent are durable in the node itself.
    cli.ok(['secrets', 'set', 'app:new'], { input: 'via agent', env: { KEYNODE_PASSWORD: undefined } });
    cli.ok(['agent', 'stop']);
    expect(alive(pid)).toBe(false);
    expect(fs.existsSync(socket)).toBe(false);
    expect(fs.existsSync(path.join(cli.nodePath, 'LOCK'))).toBe(false);
    expect(cli.ok(['secrets', 'get', 'app:new']).out).toBe('via agent');
    expect(cli.run(['agent', 'status']).code).toBe(12);
  });

  it('sessions expire, refresh while in use, and need the password again after lock', async () => {
    const cli = cliSandbox();
    seed(cli);
    startAgent(cli, '--session-ttl', '3s');
    const noPassword = { env: { KEYNODE_PASSWORD: undefined } };
    expect(cli.ok(['secrets', 'get', 'app:api/key'], noPassword).out).toBe('k-123');
    await sleep(1700); // past half the session's life: the next call refreshes it
    expect(cli.ok(['secrets', 'get', 'app:api/key'], noPassword).out).toBe('k-123');
    await sleep(1700); // beyond the first token's life, within the refreshed one's
    expect(cli.ok(['secrets', 'get', 'app:api/key'], noPassword).out).toBe('k-123');
    await sleep(3200); // idle past the refreshed token's life
    const expired = cli.run(['secrets', 'get', 'app:api/key'], noPassword);
    expect(expired.code).toBe(11);
    expect(expired.stderr).toContain('ERR_UNAUTHENTICATED');
    // With a password source the CLI signs in again by itself.
    expect(cli.ok(['secrets', 'get', 'app:api/key']).out).toBe('k-123');

    cli.ok(['agent', 'lock']);
    expect(cli.ok(['agent', 'status', '--json']).json()).toMatchObject({ locked: true, sessions: 0, nodeId: null });
    const locked = cli.run(['secrets', 'get', 'app:api/key'], noPassword);
    expect(locked.code).toBe(11);
    expect(locked.stderr).toContain('ERR_AGENT_LOCKED');
    expect(cli.run(['agent', 'unlock'], { env: { KEYNODE_PASSWORD: 'wrong' } }).code).toBe(4);
    cli.ok(['agent', 'unlock']);
    expect(cli.ok(['secrets', 'get', 'app:api/key'], noPassword).out).toBe('k-123');
  });

  it('a foreground agent runs without core dumps even when the shell allows them, and stops on SIGTERM', async () => {
    const cli = cliSandbox();
    seed(cli);
    const parent = spawn('/bin/sh', ['-c', `ulimit -S -c unlimited; exec "${process.execPath}" "${CLI}" agent start`], { env: cli.env, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => parent.stdout.on('data', (d: Buffer) => d.toString().includes('keynode agent running') && resolve()));
    const { pid, socket } = cli.ok(['agent', 'status', '--json']).json();
    agents.push(pid);
    expect(pid).not.toBe(parent.pid); // the agent is a child started under ulimit -c 0
    expect(fs.readFileSync(`/proc/${pid}/limits`, 'utf8')).toMatch(/Max core file size\s+0\s/);
    expect(cli.ok(['secrets', 'get', 'app:api/key'], { env: { KEYNODE_PASSWORD: undefined } }).out).toBe('k-123');
    parent.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => parent.on('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    expect(alive(pid)).toBe(false);
    expect(fs.existsSync(socket)).toBe(false);
  });

  it('locks itself after --idle-timeout', async () => {
    const cli = cliSandbox();
    seed(cli);
    startAgent(cli, '--idle-timeout', '1s');
    expect(cli.ok(['agent', 'status', '--json']).json().locked).toBe(false);
    await sleep(1600);
    expect(cli.ok(['agent', 'status', '--json']).json().locked).toBe(true);
  });

  it('recovers the stale socket and lock of a SIGKILLed agent', () => {
    const cli = cliSandbox();
    seed(cli);
    const first = startAgent(cli);
    process.kill(first.pid, 'SIGKILL');
    while (alive(first.pid)) spawn('true');
    expect(fs.existsSync(first.socket)).toBe(true);
    expect(fs.existsSync(path.join(cli.nodePath, 'LOCK'))).toBe(true);
    // Without an agent the CLI works in process, taking over the dead agent's lock.
    expect(cli.ok(['secrets', 'get', 'app:api/key', '--lock-timeout', '0']).out).toBe('k-123');
    // And a new agent starts over the stale socket.
    const second = startAgent(cli);
    expect(second.pid).not.toBe(first.pid);
    expect(cli.ok(['secrets', 'get', 'app:api/key'], { env: { KEYNODE_PASSWORD: undefined } }).out).toBe('k-123');
    expect(cli.run(['agent', 'start', '--background']).code).toBe(12); // one agent per node
  });

  it('24 concurrent CLIs writing through the agent lose no update', async () => {
    const cli = cliSandbox();
    seed(cli);
    startAgent(cli);
    const before = cli.ok(['vaults', 'log', 'app', '--json']).json().commits.length;
    const writers = Array.from({ length: 24 }, (_, i) => cli.runAsync(['secrets', 'set', `app:concurrent/${i}`], { input: `value-${i}`, env: { KEYNODE_PASSWORD: undefined } }));
    const results = await Promise.all(writers);
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    for (let i = 0; i < 24; i++) expect(cli.ok(['secrets', 'get', `app:concurrent/${i}`]).out).toBe(`value-${i}`);
    expect(cli.ok(['vaults', 'log', 'app', '--json']).json().commits.length).toBe(before + 24);
  });

  it('secrets env returns the command status, forwards signals, keeps secrets out of argv and the agent log', async () => {
    const cli = cliSandbox();
    seed(cli);
    const { log } = startAgent(cli);
    const noPassword = { env: { KEYNODE_PASSWORD: undefined } };
    expect(cli.run(['secrets', 'env', 'app:db', '--', 'sh', '-c', 'test "$PASSWORD" = pw-two && exit 7'], noPassword).code).toBe(7);
    expect(cli.run(['secrets', 'env', 'app', '--', 'sh', '-c', 'kill -TERM $$'], noPassword).code).toBe(143);
    expect(cli.run(['secrets', 'env', 'app', '--', 'no-such-command-here'], noPassword).code).toBe(127);
    // argv of the child (and of everything running) never holds the value.
    const ps = cli.ok(['secrets', 'env', 'app:db', '--', 'sh', '-c', 'echo "child sees ${#PASSWORD} chars"; ps -eo args'], noPassword).out;
    expect(ps).toContain('child sees 6 chars');
    expect(ps).not.toContain('pw-two');
    expect(ps).not.toContain(TEST_PASSWORD);
    // A signal to keynode reaches the command, whose own exit status comes back.
    const trap = `trap 'exit 42' TERM; echo ready; while true; do sleep 0.05; done`;
    const child = spawn(process.execPath, [CLI, 'secrets', 'env', 'app:db', '--', 'sh', '-c', trap], { env: { ...cli.env, KEYNODE_PASSWORD: '' } });
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(42);
    // The agent's log names methods and outcomes, never values, paths or the password.
    const logText = fs.readFileSync(log, 'utf8');
    expect(logText).toContain('secrets.collect ok');
    for (const secret of ['pw-one', 'pw-two', 'k-123', TEST_PASSWORD, 'db/password']) expect(logText).not.toContain(secret);
  });

  it('survives 1,500 malformed requests on its socket and still serves', async () => {
    const cli = cliSandbox();
    seed(cli);
    const { pid, socket } = startAgent(cli);
    const token = JSON.parse(fs.readFileSync(fs.readdirSync(path.join(cli.env.XDG_RUNTIME_DIR!, 'keynode')).map((f) => path.join(cli.env.XDG_RUNTIME_DIR!, 'keynode', f)).find((f) => f.includes('session-'))!, 'utf8')).token;
    const methods = ['secrets.get', 'secrets.set', 'secrets.collect', 'vaults.diff', 'vaults.import', 'secrets.transfer', 'session.unlock', 'agent.status', 'nope', '__proto__', 'constructor'];
    const junk = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.record({
        v: fc.oneof(fc.constant(1), fc.jsonValue()),
        id: fc.oneof(fc.integer(), fc.string({ maxLength: 80 }), fc.jsonValue()),
        method: fc.oneof(fc.constantFrom(...methods), fc.jsonValue()),
        token: fc.oneof(fc.constant(token), fc.jsonValue()),
        params: fc.oneof(
          fc.jsonValue(),
          fc.record({ vault: fc.oneof(fc.constant('app'), fc.jsonValue()), path: fc.oneof(fc.constant('db/password'), fc.string(), fc.jsonValue()), value: fc.oneof(fc.string(), fc.jsonValue()) }, { requiredKeys: [] }),
        ),
      }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
    );
    const frames = fc.sample(junk, { numRuns: 1500, seed: 4242 }).map((f) => f.replace(/\n/g, ' '));
    let answered = 0;
    for (let start = 0; start < frames.length; start += 100) {
      const batch = frames.slice(start, start + 100);
      const replies = await exchange(socket, batch.join('\n') + '\n', batch.filter((f) => f.trim().length > 0).length);
      for (const reply of replies) {
        const parsed = JSON.parse(reply);
        expect(parsed.v).toBe(1);
        if (parsed.error) expect(parsed.error.code).not.toBe('ERR_INTERNAL');
      }
      answered += replies.length;
      expect(alive(pid)).toBe(true);
    }
    expect(answered).toBeGreaterThan(1400);
    // An oversized frame closes that connection only.
    const huge = await exchange(socket, Buffer.alloc(130 * 1024 * 1024, 0x61), 1);
    expect(JSON.parse(huge[0]!).error.code).toBe('ERR_INVALID_REQUEST');
    expect(alive(pid)).toBe(true);
    expect(cli.ok(['secrets', 'get', 'app:db/password'], { env: { KEYNODE_PASSWORD: undefined } }).out).toBe('pw-two');
    expect(cli.ok(['agent', 'status', '--json']).json().locked).toBe(false);
  }, 120_000);

  it('on SIGTERM finishes in-flight writes, then releases lock and socket', async () => {
    const cli = cliSandbox();
    seed(cli);
    const { pid, socket, log } = startAgent(cli);
    const writes = Array.from({ length: 12 }, (_, i) => cli.runAsync(['secrets', 'set', `app:late/${i}`], { input: Buffer.alloc(200_000, i + 1), env: { KEYNODE_PASSWORD: undefined } }));
    // Signal once writes are being served, so some are in flight and some arrive too late.
    for (let t = 0; !fs.readFileSync(log, 'utf8').includes('secrets.set ok') && t < 400; t++) await sleep(10);
    process.kill(pid, 'SIGTERM');
    const results = await Promise.all(writes);
    for (let t = 0; alive(pid) && t < 100; t++) await sleep(50);
    expect(alive(pid)).toBe(false);
    expect(fs.existsSync(socket)).toBe(false);
    expect(fs.existsSync(path.join(cli.nodePath, 'LOCK'))).toBe(false);
    // Every write the agent acknowledged is in the node.
    results.forEach((result, i) => {
      if (result.code === 0) expect(cli.ok(['secrets', 'get', `app:late/${i}`]).stdout.equals(Buffer.alloc(200_000, i + 1))).toBe(true);
    });
    expect(results.filter((r) => r.code === 0).length).toBeGreaterThan(0);
  });
});
