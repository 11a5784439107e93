import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CLI, cliSandbox, killAfterTest, sessionToken, startAgent } from '../helpers/cli.js';
import { lockPresent, TEST_PASSWORD } from '../helpers/index.js';

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
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // The agent may close a connection it refused while we still write: keep what it said.
      if (error.code === 'EPIPE' || error.code === 'ECONNRESET') return;
      reject(error);
    });
    socket.write(payload);
  });
}

/** How often each needle occurs in a process's memory (its anonymous, heap and stack mappings). */
function countInMemory(pid: number, needles: Buffer[]): number[] {
  const counts = needles.map(() => 0);
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    for (const line of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
      const [range, perms, , , , file] = line.split(/\s+/);
      if (!range || !perms?.startsWith('r') || (file && !file.startsWith('['))) continue; // files' mappings hold no secrets
      const [start, end] = range.split('-').map((hex) => BigInt(`0x${hex}`)) as [bigint, bigint];
      const step = 64n * 1024n * 1024n;
      const overlap = 256; // so a needle across two reads is still found
      for (let at = start; at < end; at += step) {
        const length = Number(end - at < step ? end - at : step) + (end - at > step ? overlap : 0);
        const buffer = Buffer.alloc(length);
        let read = 0;
        try {
          read = fs.readSync(fd, buffer, 0, length, at);
        } catch {
          continue; // a guard page
        }
        const data = buffer.subarray(0, read);
        needles.forEach((needle, i) => {
          for (let j = data.indexOf(needle); j >= 0; j = data.indexOf(needle, j + 1)) if (j < Number(step)) counts[i]!++;
        });
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return counts;
}

/** A 0600 password file in the sandbox. */
function writePasswordFile(cli: ReturnType<typeof cliSandbox>, password: string): string {
  const file = path.join(cli.root, 'password');
  fs.writeFileSync(file, password, { mode: 0o600 });
  return file;
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
      expect({ code: result.code, out: result.out, err: result.stderr }, commands[i]!.join(' ')).toEqual({
        code: local[i]!.code,
        out: local[i]!.out,
        err: local[i]!.stderr,
      });
    });
    // Writes through the agent are durable in the node itself.
    cli.ok(['secrets', 'set', 'app:new'], { input: 'via agent', env: { KEYNODE_PASSWORD: undefined } });
    cli.ok(['agent', 'stop']);
    expect(alive(pid)).toBe(false);
    expect(fs.existsSync(socket)).toBe(false);
    expect(lockPresent(cli.nodePath)).toBe(false);
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
    const parent = spawn('/bin/sh', ['-c', `ulimit -S -c unlimited; exec "${process.execPath}" "${CLI}" agent start`], {
      env: cli.env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => parent.stdout.on('data', (d: Buffer) => d.toString().includes('keynode agent running') && resolve()));
    const { pid, socket } = cli.ok(['agent', 'status', '--json']).json();
    killAfterTest(pid);
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
    expect(lockPresent(cli.nodePath)).toBe(true);
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
    const writers = Array.from({ length: 24 }, (_, i) =>
      cli.runAsync(['secrets', 'set', `app:concurrent/${i}`], { input: `value-${i}`, env: { KEYNODE_PASSWORD: undefined } }),
    );
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
    const token = sessionToken(cli);
    const methods = [
      'secrets.get',
      'secrets.set',
      'secrets.collect',
      'vaults.diff',
      'vaults.import',
      'secrets.transfer',
      'session.unlock',
      'agent.status',
      'nope',
      '__proto__',
      'constructor',
    ];
    const junk = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc
        .record(
          {
            v: fc.oneof(fc.constant(1), fc.jsonValue()),
            id: fc.oneof(fc.integer(), fc.string({ maxLength: 80 }), fc.jsonValue()),
            method: fc.oneof(fc.constantFrom(...methods), fc.jsonValue()),
            token: fc.oneof(fc.constant(token), fc.jsonValue()),
            params: fc.oneof(
              fc.jsonValue(),
              fc.record(
                {
                  vault: fc.oneof(fc.constant('app'), fc.jsonValue()),
                  path: fc.oneof(fc.constant('db/password'), fc.string(), fc.jsonValue()),
                  value: fc.oneof(fc.string(), fc.jsonValue()),
                },
                { requiredKeys: [] },
              ),
            ),
          },
          { requiredKeys: [] },
        )
        .map((v) => JSON.stringify(v)),
    );
    // A frame starting with NUL is a binary chunk frame (docs/api.md): junk lines do not start with one.
    const frames = fc.sample(junk, { numRuns: 1500, seed: 4242 }).map((f) => f.replace(/\n/g, ' ').replace(/^\0+/, ''));
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
    // An oversized frame closes that connection only (unauthenticated: at 64 KiB).
    const huge = await exchange(socket, Buffer.alloc(130 * 1024 * 1024, 0x61), 1);
    expect(JSON.parse(huge[0]!).error).toMatchObject({ code: 'ERR_INVALID_REQUEST', message: expect.stringContaining('frame too large') });
    expect(alive(pid)).toBe(true);
    expect(cli.ok(['secrets', 'get', 'app:db/password'], { env: { KEYNODE_PASSWORD: undefined } }).out).toBe('pw-two');
    expect(cli.ok(['agent', 'status', '--json']).json().locked).toBe(false);
  }, 120_000);

  it('on SIGTERM finishes in-flight writes, then releases lock and socket', async () => {
    const cli = cliSandbox();
    seed(cli);
    const { pid, socket, log } = startAgent(cli);
    const writes = Array.from({ length: 12 }, (_, i) =>
      cli.runAsync(['secrets', 'set', `app:late/${i}`], { input: Buffer.alloc(200_000, i + 1), env: { KEYNODE_PASSWORD: undefined } }),
    );
    // Signal once writes are being served, so some are in flight and some arrive too late.
    for (let t = 0; !fs.readFileSync(log, 'utf8').includes('secrets.set ok') && t < 400; t++) await sleep(10);
    process.kill(pid, 'SIGTERM');
    const results = await Promise.all(writes);
    for (let t = 0; alive(pid) && t < 100; t++) await sleep(50);
    expect(alive(pid)).toBe(false);
    expect(fs.existsSync(socket)).toBe(false);
    expect(lockPresent(cli.nodePath)).toBe(false);
    // Every write the agent acknowledged is in the node.
    results.forEach((result, i) => {
      if (result.code === 0) expect(cli.ok(['secrets', 'get', `app:late/${i}`]).stdout.equals(Buffer.alloc(200_000, i + 1))).toBe(true);
    });
    expect(results.filter((r) => r.code === 0).length).toBeGreaterThan(0);
  });

  it('keeps no password after unlock and no key or value after lock (its memory, scanned)', () => {
    const cli = cliSandbox();
    const password = `pw-${crypto.randomBytes(12).toString('hex')}`;
    const value = `planted-${crypto.randomBytes(12).toString('hex')}`;
    const withPassword = { env: { KEYNODE_PASSWORD: password } };
    cli.ok(['init', '--kdf-memory', '8192', '--kdf-iterations', '1'], withPassword);
    cli.ok(['vaults', 'create', 'app'], withPassword);
    cli.ok(['secrets', 'set', 'app:planted'], { ...withPassword, input: value });
    const { pid, socket } = cli.ok(['agent', 'start', '--background', '--json'], withPassword).json();
    killAfterTest(pid);
    cli.ok(['agent', 'unlock'], withPassword); // the password once more, over the socket
    expect(cli.ok(['secrets', 'get', 'app:planted'], { env: { KEYNODE_PASSWORD: undefined } }).out).toBe(value);
    // The CLI sends the password as passwordBase64: that spelling must not stay behind either.
    const needles = [password, value, Buffer.from(value).toString('base64'), socket, Buffer.from(password).toString('base64')].map((text) => Buffer.from(text));
    const [passwordCopies, , , control, passwordBase64Copies] = countInMemory(pid, needles);
    expect(control).toBeGreaterThan(0); // the scan does find what the agent holds
    expect(passwordCopies).toBe(0); // before: 10 copies, one in the agent's options for its lifetime
    expect(passwordBase64Copies).toBe(0);
    cli.ok(['agent', 'lock']);
    const [afterPassword, afterValue, afterBase64] = countInMemory(pid, needles);
    expect({ afterPassword, afterValue, afterBase64 }).toEqual({ afterPassword: 0, afterValue: 0, afterBase64: 0 }); // before: 10, 2, 4
  });

  it('secrets set from stdin signs a locked agent in again from KEYNODE_PASSWORD, as its UTF-8 bytes', async () => {
    const cli = cliSandbox();
    const withPassword = { env: { KEYNODE_PASSWORD: 'pässwörd-ü' } };
    cli.ok(['init', '--kdf-memory', '8192', '--kdf-iterations', '1'], withPassword);
    cli.ok(['vaults', 'create', 'app'], withPassword);
    const { socket } = startAgent(cli, '--password-file', writePasswordFile(cli, 'pässwörd-ü'));
    // Locked behind the CLI's back (as an idle timeout does): the session file stays, so the fast path runs.
    const raw = net.connect(socket);
    raw.write('{"v":1,"id":1,"method":"agent.lock","params":{}}\n');
    await new Promise((resolve) => raw.once('data', resolve));
    raw.destroy();
    expect(cli.ok(['agent', 'status', '--json']).json().locked).toBe(true);
    cli.ok(['secrets', 'set', 'app:k'], { ...withPassword, input: 'v-1' });
    expect(cli.ok(['agent', 'status', '--json']).json().locked).toBe(false);
    expect(cli.ok(['secrets', 'get', 'app:k'], { env: { KEYNODE_PASSWORD: undefined } }).out).toBe('v-1');
  });

  it("sends nothing to a socket that is not its own agent's", async () => {
    const cli = cliSandbox();
    seed(cli);
    const socketPath = path.join(cli.nodePath, 'agent.sock');
    const received: Buffer[] = [];
    const impostor = net.createServer((connection) => connection.on('data', (d: Buffer) => received.push(d)));
    await new Promise<void>((resolve) => impostor.listen(socketPath, resolve));
    try {
      const noToken = { env: { KEYNODE_PASSWORD: TEST_PASSWORD } };
      fs.chmodSync(socketPath, 0o666); // anyone could have bound it
      const open = cli.run(['agent', 'unlock'], noToken);
      expect(open.code).toBe(8);
      expect(open.stderr).toContain(`refusing the agent socket ${socketPath}: its mode 666 lets other users connect`);
      fs.chmodSync(socketPath, 0o600);
      fs.chownSync(socketPath, 4321, 4321); // another user's
      const foreign = cli.run(['secrets', 'get', 'app:api/key'], noToken);
      expect(foreign.code).toBe(8);
      expect(foreign.stderr).toContain('it belongs to uid 4321');
      fs.chownSync(socketPath, process.getuid!(), process.getgid!());
      fs.chmodSync(cli.nodePath, 0o777); // a directory where others could swap the socket
      expect(cli.run(['agent', 'unlock'], noToken).stderr).toContain('is writable by other users');
      fs.chmodSync(cli.nodePath, 0o700);
      await sleep(100);
      expect(Buffer.concat(received).length).toBe(0); // not a byte, let alone the password
    } finally {
      impostor.close();
    }
  });

  it('a foreground agent that cannot make its runtime directory private exits with a clear error', async () => {
    const cli = cliSandbox();
    seed(cli);
    fs.mkdirSync(path.join(cli.env.XDG_RUNTIME_DIR!, 'keynode'), { mode: 0o755 });
    fs.chmodSync(path.join(cli.env.XDG_RUNTIME_DIR!, 'keynode'), 0o755);
    const child = spawn(process.execPath, [CLI, 'agent', 'start'], { env: cli.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null); // still running: the failure this test is about
      }, 15_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code).toBe(8);
    expect(stderr).toContain('is not private to this user');
    expect(fs.existsSync(path.join(cli.nodePath, 'agent.sock'))).toBe(false);
    expect(lockPresent(cli.nodePath)).toBe(false);
  }, 30_000);

  it('refuses a value over the one-frame limit in secrets.set, saying the limit (larger values go as streams: tests/e2e/largeValues.test.ts)', async () => {
    const cli = cliSandbox();
    seed(cli);
    const limit = 'values are limited to 64 MiB';
    startAgent(cli);
    // The agent's own check, for clients that send one anyway.
    const { socket } = JSON.parse(cli.ok(['agent', 'status', '--json']).out);
    const token = sessionToken(cli);
    const value = Buffer.alloc(64 * 1024 * 1024 + 1).toString('base64');
    const replies = await exchange(
      socket,
      `{"v":1,"id":0,"method":"node.status","token":"${token}"}\n{"v":1,"id":1,"method":"secrets.set","token":"${token}","params":{"vault":"app","path":"big","value":"${value}"}}\n`,
      2,
    );
    expect(replies.map((r) => JSON.parse(r)).find((r) => r.id === 1).error).toEqual({
      code: 'ERR_INVALID_REQUEST',
      message: `invalid request: params.value is too large: ${limit}`,
      data: { field: 'params.value' },
    });
  }, 120_000);

  it("writes an export where the caller means, never relative to the agent's directory", async () => {
    const cli = cliSandbox();
    seed(cli);
    const { socket } = startAgent(cli);
    const token = sessionToken(cli);
    const [reply] = await exchange(
      socket,
      `{"v":1,"id":1,"method":"vaults.exportBundle","token":"${token}","params":{"name":"app","file":"rel/app.bundle"}}\n`,
      1,
    );
    // Errors cross the socket whole: code, message and data.
    expect(JSON.parse(reply!).error).toEqual({
      code: 'ERR_INVALID_REQUEST',
      message: 'invalid request: params.file must be an absolute path',
      data: { field: 'params.file' },
    });
    // The CLI resolves against its own working directory before sending.
    const workdir = path.join(cli.root, 'work');
    fs.mkdirSync(workdir);
    const exported = spawn(process.execPath, [CLI, 'vaults', 'export', 'app', '--git-bundle', 'app.bundle', '--yes'], {
      cwd: workdir,
      env: { ...cli.env, KEYNODE_PASSWORD: '' },
    });
    expect(await new Promise((resolve) => exported.on('exit', resolve))).toBe(0);
    expect(fs.statSync(path.join(workdir, 'app.bundle')).mode & 0o777).toBe(0o600);
  });
});
