import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliSandbox, startAgent, type CliOptions } from '../helpers/cli.js';

/**
 * The native client (native/keynode.c, dist/native/keynode) against the Node CLI on the same
 * cases: stdout, stderr and exit code must be byte for byte the same, whether the native
 * client answers itself or hands the invocation to Node.
 */
// KEYNODE_TEST_NATIVE: another build of the client (e.g. one with sanitizers) to run these cases against.
const NATIVE = process.env.KEYNODE_TEST_NATIVE ?? path.resolve(import.meta.dirname, '../../dist/native/keynode');
const WRAPPER = path.resolve(import.meta.dirname, '../../bin/keynode');
const hasCompiler = spawnSync(process.env.CC || 'cc', ['--version'], { stdio: 'ignore' }).status === 0;

if (!hasCompiler) console.warn('tests/e2e/native.test.ts skipped: no C compiler, so no native client (the Node CLI serves everything)');

type Sandbox = ReturnType<typeof cliSandbox>;

function runNative(cli: Sandbox, args: string[], options: CliOptions & { program?: string } = {}) {
  const result = spawnSync(options.program ?? NATIVE, args, {
    input: options.input ?? '',
    env: Object.fromEntries(Object.entries({ ...cli.env, ...options.env }).filter(([, v]) => v !== undefined)),
    maxBuffer: 128 * 1024 * 1024,
    timeout: 30_000, // a hang fails the case (killed: code -1) instead of the whole run
  });
  return { code: result.status ?? -1, signal: result.signal, stdout: result.stdout, stderr: result.stderr.toString() };
}

/** A stand-in for the Node CLI: proves the native client answered without it. */
function fallbackMarker(cli: Sandbox): string {
  const file = path.join(cli.root, 'fallback.sh');
  fs.writeFileSync(file, '#!/bin/sh\necho FELL-BACK >&2\nexit 99\n', { mode: 0o700 });
  return file;
}

const commitIds = (text: string) => text.replace(/[0-9a-f]{40}/g, '<commit>').replace(/commit [0-9a-f]{12}/g, 'commit <short>');

describe.skipIf(!hasCompiler)('native client', () => {
  it('is built when a C compiler exists', () => {
    expect(fs.existsSync(NATIVE), 'npm run build should have built dist/native/keynode').toBe(true);
  });

  it('answers get and set itself, and prints what the Node CLI prints', () => {
    const cli = cliSandbox();
    cli.init();
    startAgent(cli);
    cli.ok(['vaults', 'create', 'app']);
    cli.ok(['secrets', 'set', 'app:db/password'], { input: 'hunter2\n' });
    cli.ok(['secrets', 'set', 'app:binary'], { input: Buffer.from([0, 255, 254, 10, 13]) });
    cli.ok(['secrets', 'set', 'app:json'], { input: 'quote " backslash \\ tab \t ctl \x01 é 😀 \u2028' });
    const marker = fallbackMarker(cli);

    const cases: Array<{ args: string[]; native: boolean }> = [
      { args: ['secrets', 'get', 'app:db/password'], native: true },
      { args: ['secrets', 'get', 'app:db/password/'], native: true },
      { args: ['secrets', 'get', 'app:db/password', '--json'], native: true },
      { args: ['secrets', 'get', '--json', 'app:binary'], native: true },
      { args: ['secrets', 'get', 'app:binary'], native: true },
      { args: ['secrets', 'get', 'app:json', '--json'], native: true },
      { args: ['secrets', 'get', 'app:db/password', '--version', 'HEAD~1', '--json'], native: true },
      { args: ['secrets', 'get', 'app:db/password', '--version', 'nope'], native: true },
      { args: ['secrets', 'get', 'app:db/password', '--version', 'nope', '--json'], native: true },
      { args: ['secrets', 'get', 'app:missing'], native: true },
      { args: ['secrets', 'get', 'app:missing', '--json'], native: true },
      { args: ['secrets', 'get', 'nope:x'], native: true },
      { args: ['secrets', 'get', 'app:db'], native: true },
      { args: ['secrets', 'get', 'app:.git/x'], native: false },
      { args: ['secrets', 'get', 'app:../x', '--json'], native: false },
      { args: ['secrets', 'get', 'novault'], native: false },
      { args: ['secrets', 'get', 'app:db/password', '--copy'], native: false },
      { args: ['secrets', 'get'], native: false },
      { args: ['--version'], native: false },
      { args: ['vaults', 'list', '--json'], native: false },
    ];
    for (const { args, native } of cases) {
      const expected = cli.run(args);
      const actual = runNative(cli, args);
      expect({ args, code: actual.code, stdout: actual.stdout.toString('base64'), stderr: actual.stderr }).toEqual({
        args,
        code: expected.code,
        stdout: expected.stdout.toString('base64'),
        stderr: expected.stderr,
      });
      const marked = runNative(cli, args, { env: { KEYNODE_NATIVE_FALLBACK: marker } });
      expect({ args, fellBack: marked.stderr.includes('FELL-BACK') }).toEqual({ args, fellBack: !native });
    }

    // set: every case on its own path for each client; commit ids differ, the rest may not.
    const setCases: Array<{ args: (path: string) => string[]; input: string | Buffer; native: boolean }> = [
      { args: (p) => ['secrets', 'set', `app:${p}`], input: 'value\n', native: true },
      { args: (p) => ['secrets', 'set', `app:${p}`, '--json'], input: Buffer.from([1, 2, 255]), native: true },
      { args: (p) => ['secrets', 'set', `app:${p}`, '-m', 'rotated "quoted" é'], input: '', native: true },
      { args: (p) => ['secrets', 'set', `app:${p}`, '--json', '--message', 'x'], input: 'v', native: true },
      { args: (p) => ['secrets', 'set', `nope:${p}`], input: 'v', native: true },
      { args: (p) => ['secrets', 'set', `nope:${p}`, '--json'], input: 'v', native: true },
      { args: (p) => ['secrets', 'set', `app:db/password/${p}`], input: 'v', native: true },
      { args: (p) => ['secrets', 'set', `app:.git/${p}`], input: 'v', native: false },
      { args: (p) => ['secrets', 'set', `app:${p}`, '--generate'], input: '', native: false },
    ];
    let n = 0;
    for (const { args, input, native } of setCases) {
      const nodeName = `node-${n}`;
      const nativeName = `native-${n++}`;
      const nodeArgs = args(nodeName);
      const nativeArgs = args(nativeName);
      const expected = cli.run(nodeArgs, { input });
      const actual = runNative(cli, nativeArgs, { input });
      const same = (text: string, from: string) => commitIds(text.replaceAll(from, '<path>'));
      expect({ args: nativeArgs, code: actual.code, stdout: same(actual.stdout.toString(), nativeName), stderr: same(actual.stderr, nativeName) }).toEqual({
        args: nativeArgs,
        code: expected.code,
        stdout: same(expected.out, nodeName),
        stderr: same(expected.stderr, nodeName),
      });
      if (expected.code === 0 && native) expect(cli.run(['secrets', 'get', nativeArgs[2]!]).stdout).toEqual(cli.run(['secrets', 'get', nodeArgs[2]!]).stdout);
      const marked = runNative(cli, args(`marked-${n}`), { input, env: { KEYNODE_NATIVE_FALLBACK: marker } });
      expect({ args: nativeArgs, fellBack: marked.stderr.includes('FELL-BACK') }).toEqual({ args: nativeArgs, fellBack: !native });
    }
    // Writing the same value again: "unchanged", as Node says it.
    const again = runNative(cli, ['secrets', 'set', 'app:db/password'], { input: 'hunter2\n' });
    expect(again.stdout.toString()).toBe(cli.run(['secrets', 'set', 'app:db/password'], { input: 'hunter2\n' }).out);

    // Through the bin wrapper (what npm installs), the same bytes.
    const viaWrapper = runNative(cli, ['secrets', 'get', 'app:binary'], { program: WRAPPER });
    expect(viaWrapper.stdout).toEqual(cli.run(['secrets', 'get', 'app:binary']).stdout);
    expect(runNative(cli, ['vaults', 'list'], { program: WRAPPER }).stdout.toString()).toBe(cli.run(['vaults', 'list']).out);
  });

  it('hands over to Node without an agent, with a stale session, and when the agent is locked', () => {
    const cli = cliSandbox();
    cli.init();
    const marker = fallbackMarker(cli);
    // No agent: the in-process CLI answers.
    cli.ok(['vaults', 'create', 'app']);
    cli.ok(['secrets', 'set', 'app:k'], { input: 'v1' });
    for (const args of [
      ['secrets', 'get', 'app:k'],
      ['secrets', 'get', 'app:none', '--json'],
    ]) {
      const expected = cli.run(args);
      const actual = runNative(cli, args);
      expect({ code: actual.code, stdout: actual.stdout.toString(), stderr: actual.stderr }).toEqual({
        code: expected.code,
        stdout: expected.out,
        stderr: expected.stderr,
      });
      expect(runNative(cli, args, { env: { KEYNODE_NATIVE_FALLBACK: marker } }).code).toBe(99);
    }
    startAgent(cli);
    cli.ok(['secrets', 'get', 'app:k']); // a session now exists
    const sessions = fs.readdirSync(path.join(cli.env.XDG_RUNTIME_DIR!, 'keynode')).filter((f) => f.startsWith('session-'));
    expect(sessions).toHaveLength(1);
    const sessionPath = path.join(cli.env.XDG_RUNTIME_DIR!, 'keynode', sessions[0]!);
    expect(runNative(cli, ['secrets', 'get', 'app:k'], { env: { KEYNODE_NATIVE_FALLBACK: marker } }).stdout.toString()).toBe('v1');

    // An expired session, then a token the agent does not know: Node signs in again.
    const stored = JSON.parse(fs.readFileSync(sessionPath, 'utf8')) as { token: string; expiresAt: number; issuedAt: number };
    fs.writeFileSync(sessionPath, JSON.stringify({ ...stored, expiresAt: Date.now() - 1000, issuedAt: Date.now() - 5000 }));
    expect(runNative(cli, ['secrets', 'get', 'app:k'], { env: { KEYNODE_NATIVE_FALLBACK: marker } }).code).toBe(99);
    expect(runNative(cli, ['secrets', 'get', 'app:k']).stdout.toString()).toBe('v1');
    const fresh = JSON.parse(fs.readFileSync(sessionPath, 'utf8')) as typeof stored;
    fs.writeFileSync(sessionPath, JSON.stringify({ ...fresh, token: 'bogus-token' }));
    expect(runNative(cli, ['secrets', 'get', 'app:k'], { env: { KEYNODE_NATIVE_FALLBACK: marker } }).code).toBe(99);
    fs.writeFileSync(sessionPath, JSON.stringify({ ...fresh, token: 'bogus-token' }));
    const unauthenticated = runNative(cli, ['secrets', 'set', 'app:k'], { input: 'v2' });
    expect({ code: unauthenticated.code, stderr: unauthenticated.stderr }).toEqual({ code: 0, stderr: '' });
    expect(runNative(cli, ['secrets', 'get', 'app:k']).stdout.toString()).toBe('v2');

    // Locked agent, no password to be had: the same refusal from both.
    cli.ok(['agent', 'lock']);
    for (const args of [
      ['secrets', 'get', 'app:k'],
      ['secrets', 'set', 'app:k', '--json'],
    ]) {
      const env = { KEYNODE_PASSWORD: undefined };
      const expected = cli.run(args, { input: 'v3', env });
      const actual = runNative(cli, args, { input: 'v3', env });
      expect({ args, code: actual.code, stdout: actual.stdout.toString(), stderr: actual.stderr }).toEqual({
        args,
        code: expected.code,
        stdout: expected.out,
        stderr: expected.stderr,
      });
    }
  });

  it('treats closed standard descriptors, odd stdin and out-of-range session counts as Node does', () => {
    const cli = cliSandbox();
    cli.init();
    startAgent(cli);
    cli.ok(['vaults', 'create', 'app']);
    cli.ok(['secrets', 'set', 'app:k'], { input: 'v1' }); // a session to use
    const marker = fallbackMarker(cli);
    // A closed stdin is /dev/null for Node (an empty value); the agent socket must not take fd 0
    // (it was read as the value until the agent dropped the idle connection, 2 minutes later).
    const NODE_CLI = [process.execPath, path.resolve(import.meta.dirname, '../../dist/cli/keynode.cjs')];
    const closed = (fds: string, args: string[], command = [NATIVE]) =>
      runNative(cli, ['-c', `exec "$@" ${fds}`, 'sh', ...command, ...args], { program: '/bin/sh' });
    const setClosed = closed('<&-', ['secrets', 'set', 'app:empty', '--json']);
    const setClosedNode = closed('<&-', ['secrets', 'set', 'app:empty-node', '--json'], NODE_CLI);
    expect({
      code: setClosed.code,
      stderr: setClosed.stderr,
      out: setClosed.stdout
        .toString()
        .replace('"empty"', '"<p>"')
        .replace(/[0-9a-f]{40}/, '<c>'),
    }).toEqual({
      code: setClosedNode.code,
      stderr: setClosedNode.stderr,
      out: setClosedNode.stdout
        .toString()
        .replace('"empty-node"', '"<p>"')
        .replace(/[0-9a-f]{40}/, '<c>'),
    });
    expect(setClosed.code).toBe(0);
    expect(cli.run(['secrets', 'get', 'app:empty']).stdout.length).toBe(0);
    // A closed stdout or stderr: the value or the error goes nowhere, never to the agent.
    expect(closed('>&-', ['secrets', 'get', 'app:k']).code).toBe(0);
    expect(closed('2>&-', ['secrets', 'get', 'app:missing']).code).toBe(cli.run(['secrets', 'get', 'app:missing']).code);
    expect(runNative(cli, ['secrets', 'get', 'app:k']).stdout.toString()).toBe('v1'); // the agent still answers

    // stdin a directory: Node decides (it reads it as empty); the native client does not guess.
    const directory = fs.openSync(cli.root, 'r');
    const dirSet = spawnSync(NATIVE, ['secrets', 'set', 'app:dir'], {
      stdio: [directory, 'pipe', 'pipe'],
      env: { ...cli.env, KEYNODE_NATIVE_FALLBACK: marker },
    });
    fs.closeSync(directory);
    expect({ code: dirSet.status, stderr: dirSet.stderr.toString() }).toEqual({ code: 99, stderr: 'FELL-BACK\n' });

    // Session counts past Number.MAX_SAFE_INTEGER: Node's codec discards the session, so must we.
    const dir = path.join(cli.env.XDG_RUNTIME_DIR!, 'keynode');
    const sessionPath = path.join(
      dir,
      fs.readdirSync(dir).find((f) => f.startsWith('session-'))!,
    );
    const stored = JSON.parse(fs.readFileSync(sessionPath, 'utf8')) as { token: string; expiresAt: number; issuedAt: number };
    for (const text of [
      `{"token":${JSON.stringify(stored.token)},"expiresAt":99999999999999999999,"issuedAt":${stored.issuedAt}}`,
      `{"token":${JSON.stringify(stored.token)},"expiresAt":${stored.expiresAt},"issuedAt":9007199254740993}`,
    ]) {
      fs.writeFileSync(sessionPath, text);
      expect(runNative(cli, ['secrets', 'get', 'app:k'], { env: { KEYNODE_NATIVE_FALLBACK: marker } }).code).toBe(99);
      fs.writeFileSync(sessionPath, text);
      const env = { KEYNODE_PASSWORD: undefined };
      const expected = cli.run(['secrets', 'get', 'app:k'], { env });
      fs.writeFileSync(sessionPath, text);
      const actual = runNative(cli, ['secrets', 'get', 'app:k'], { env });
      expect({ code: actual.code, stdout: actual.stdout.toString(), stderr: actual.stderr }).toEqual({
        code: expected.code,
        stdout: expected.out,
        stderr: expected.stderr,
      });
    }
  });

  it('hands a large value (stdin past the large-value threshold, or a large get) to the Node CLI, which streams it', () => {
    const cli = cliSandbox();
    cli.init();
    startAgent(cli);
    cli.ok(['vaults', 'create', 'app']);
    cli.ok(['secrets', 'set', 'app:small'], { input: 'v' }); // a session to use
    // Past SECRET_VALUE_MAX_BYTES (once refused), from a pipe: the bytes the native client read first reach Node too.
    const large = Buffer.alloc(64 * 1024 * 1024 + 1, 0x61);
    large.write('first bytes', 0);
    const marker = runNative(cli, ['secrets', 'set', 'app:big'], { input: large, env: { KEYNODE_NATIVE_FALLBACK: fallbackMarker(cli) } });
    expect(marker).toMatchObject({ code: 99, stderr: 'FELL-BACK\n' }); // handed over, nothing sent
    const set = runNative(cli, ['secrets', 'set', 'app:big', '--json'], { input: large });
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout.toString())).toMatchObject({ vault: 'app', path: 'big', bytes: large.length, changed: true });
    const got = runNative(cli, ['secrets', 'get', 'app:big']);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout.equals(large)).toBe(true);
  });
});
