import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES, withHint } from '../../src/cli/exitCodes.js';
import { ERROR_CODES } from '../../src/errors.js';
import { parseReply } from '../../src/ipc/protocol.js';

/**
 * Fuzz of the native client's reply handling (native/keynode.c): a fake agent on a Unix socket
 * answers `secrets get` / `secrets set` with malformed, hostile, truncated and oversized frames.
 * The client must never die by a signal, hang, or print anything but the value or one error
 * line; where the Node client (src/ipc/protocol.ts parseReply) decides the outcome, the native
 * one must decide the same.
 */
// KEYNODE_TEST_NATIVE: another build of the client (e.g. one with sanitizers) to run these cases against.
const NATIVE = process.env.KEYNODE_TEST_NATIVE ?? path.resolve(import.meta.dirname, '../../dist/native/keynode');
const hasCompiler = spawnSync(process.env.CC || 'cc', ['--version'], { stdio: 'ignore' }).status === 0;
if (!hasCompiler) console.warn('tests/native/replyParser.test.ts skipped: no C compiler, so no native client');

const FALLBACK_EXIT = 99;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
}

let root: string;
let nodePath: string;
let env: NodeJS.ProcessEnv;
let server: net.Server;
/** The frames the fake agent sends to the next client's last request (then it closes). */
let script: { frames: Buffer } = { frames: Buffer.alloc(0) };
/** Called when a client's `node.status` probe arrives (the client is then about to read stdin). */
let onProbe: (() => void) | undefined;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'keynode-native-fuzz-')); // lives across the tests, removed in afterAll
  nodePath = path.join(root, 'node');
  fs.mkdirSync(nodePath, { mode: 0o700 });
  const runtime = path.join(root, 'run');
  fs.mkdirSync(path.join(runtime, 'keynode'), { recursive: true, mode: 0o700 });
  fs.chmodSync(runtime, 0o700);
  const key = Buffer.from(fs.realpathSync(nodePath)).toString('base64url');
  const now = Date.now();
  fs.writeFileSync(path.join(runtime, 'keynode', `session-${key}.json`), JSON.stringify({ token: 'fuzz-token', expiresAt: now + 3_600_000, issuedAt: now }), { mode: 0o600 });
  const fallback = path.join(root, 'fallback.sh');
  fs.writeFileSync(fallback, `#!/bin/sh\necho FELL-BACK >&2\nexit ${FALLBACK_EXIT}\n`, { mode: 0o700 });
  env = { PATH: process.env.PATH, HOME: root, KEYNODE_PATH: nodePath, XDG_RUNTIME_DIR: runtime, KEYNODE_NATIVE_FALLBACK: fallback };

  server = net.createServer((socket) => {
    let buffered = '';
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const request = JSON.parse(buffered.slice(0, newline)) as { id: number; method: string };
        buffered = buffered.slice(newline + 1);
        if (request.method === 'node.status') {
          socket.write(`{"v":1,"id":${request.id},"result":{"nodeId":"x"}}\n`);
          onProbe?.();
        }
        else socket.end(script.frames);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path.join(nodePath, 'agent.sock'), resolve));
  fs.chmodSync(path.join(nodePath, 'agent.sock'), 0o600);
});

afterAll(() => {
  server?.close();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

function runClient(args: string[], frames: Buffer, extraEnv: NodeJS.ProcessEnv = {}, input = 'value'): Promise<Outcome> {
  script = { frames };
  return new Promise((resolve) => {
    const child = spawn(NATIVE, args, { env: { ...env, ...extraEnv } });
    const out: Buffer[] = [];
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, 10_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal: timedOut ? null : signal, stdout: Buffer.concat(out), stderr, timedOut });
    });
  });
}

/** What the Node fast path does with this single reply frame to request `id` (then a close). */
function expected(frame: Buffer, id: number, command: 'get' | 'set'): { fallback: true } | { code: number; stderr: string } | { value: string } {
  const report = (code: keyof typeof EXIT_CODES, message: string) => ({ code: EXIT_CODES[code], stderr: Buffer.from(`keynode: ${withHint(code, message)} (${code})\n`).toString() }); // as written to a stream: UTF-8
  // A `get` hands these to the Node CLI: a sign-in, no agent, or a value too large to send whole (streamed there).
  const handsOver = (code: string) =>
    command === 'get' && (code === 'ERR_UNAUTHENTICATED' || code === 'ERR_AGENT_LOCKED' || code === 'ERR_AGENT_NOT_RUNNING' || code === 'ERR_NOT_SUPPORTED');
  const closed = () => (handsOver('ERR_AGENT_NOT_RUNNING') ? { fallback: true as const } : report('ERR_AGENT_NOT_RUNNING', 'the agent closed the connection'));
  if (frame.length === 0) return closed(); // an empty line is no frame
  let reply;
  try {
    reply = parseReply(frame);
  } catch (error) {
    const { code, message } = error as { code: keyof typeof EXIT_CODES; message: string };
    return report(code, message);
  }
  const settles = reply.id === id || (reply.id === null && 'error' in reply);
  if (!settles) return closed();
  if ('error' in reply) return handsOver(reply.error.code) ? { fallback: true } : report(reply.error.code, reply.error.message);
  const result = reply.result as { value?: unknown } | null | undefined;
  return typeof result?.value === 'string' ? { value: result.value } : { code: 1, stderr: 'keynode: internal error: the agent sent a malformed reply (ERR_INTERNAL)\n' };
}

function checkSane(outcome: Outcome): void {
  expect(outcome.timedOut, 'the native client hung').toBe(false);
  expect(outcome.signal, `the native client died by ${outcome.signal}`).toBeNull();
  const allowed = new Set([0, FALLBACK_EXIT, ...Object.values(EXIT_CODES)]);
  expect(allowed.has(outcome.code ?? -1), `exit ${outcome.code}`).toBe(true);
  if (outcome.code !== 0) {
    expect(outcome.stdout.length).toBe(0);
    expect(outcome.stderr).toMatch(outcome.code === FALLBACK_EXIT ? /^FELL-BACK\n$/ : /^keynode: [^\n]* \(ERR_[A-Z_]+\)\n$/);
  }
}

const anyJson = fc.jsonValue({ maxDepth: 3 });
const idArb = fc.oneof(fc.constant(1), fc.constant(2), fc.constant('1'), fc.constant(null), fc.constant(1.0), anyJson);
const codeArb = fc.oneof(fc.constantFrom(...ERROR_CODES), fc.string(), anyJson);
const messageArb = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 80 }), fc.constant('x'.repeat(5000)), anyJson);
const errorArb = fc.oneof(fc.record({ code: codeArb, message: messageArb }, { requiredKeys: [] }), anyJson);
const resultArb = fc.oneof(
  fc.record({ value: fc.oneof(fc.base64String(), fc.string(), anyJson) }, { requiredKeys: [] }),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ value: Buffer.from(bytes).toString('base64') })),
  anyJson,
);
const replyObject = fc.oneof(
  fc.record({ v: fc.constant(1), id: idArb, result: resultArb }, { requiredKeys: [] }),
  fc.record({ v: fc.constant(1), id: idArb, error: errorArb }, { requiredKeys: [] }),
  fc.record({ id: idArb, error: errorArb, result: resultArb }, { requiredKeys: [] }),
);
const noNewline = (bytes: Uint8Array) => Buffer.from(bytes.filter((b) => b !== 10));
/** JSON text with its strings' escapes and the odd lone surrogate, or raw hostile bytes. */
const frameArb = fc.oneof(
  replyObject.map((r) => Buffer.from(JSON.stringify(r))),
  replyObject.map((r) => JSON.stringify(r)).chain((text) => fc.nat({ max: text.length }).map((cut) => Buffer.from(text.slice(0, cut)))), // truncated
  fc.uint8Array({ maxLength: 200 }).map(noNewline),
  fc.tuple(replyObject, fc.uint8Array({ maxLength: 8 })).map(([r, junk]) => Buffer.concat([Buffer.from(JSON.stringify(r)), noNewline(junk)])),
  fc.constantFrom('{"id":1,"error":{"code":"ERR_IO","message":"\\ud800 lone"}}', '{"id":1,"result":{"value":"aGk="},"id":7}', '{"\\u0069d":1,"error":{"code":"ERR_SECRET_NOT_FOUND","message":"m"}}', '  {"id":1e0,"result":{"value":""}}\r', '{"id":-0,"error":1}', '{"id":null,"error":{"code":"ERR_AGENT_BUSY","message":"busy"}}', '{"id":1,"error":{"code":"ERR_UNAUTHENTICATED","message":"no"}}', '{"id":1,"error":{"code":"ERR_NODE_NOT_FOUND","message":"see \\"keynode init\\""}}', '[]', 'null', '"x"', '{}', '{"id":1}', '\xff\xfe').map((s) => Buffer.from(s, 'latin1')),
);

describe.skipIf(!hasCompiler)('native client reply parser', () => {
  it('decides every single-frame reply to `get` as the Node client does, and never crashes or hangs', async () => {
    await fc.assert(
      fc.asyncProperty(frameArb, async (frame) => {
        const outcome = await runClient(['secrets', 'get', 'v:a'], Buffer.concat([frame, Buffer.from('\n')]));
        checkSane(outcome);
        const want = expected(frame, 1, 'get');
        if ('fallback' in want) expect(outcome.code).toBe(FALLBACK_EXIT);
        else if ('value' in want) {
          // The agent writes standard base64; anything else is refused as malformed, never guessed.
          if (outcome.code === 0) expect(outcome.stdout).toEqual(Buffer.from(want.value, 'base64'));
          else expect(outcome.stderr).toBe('keynode: internal error: the agent sent a malformed reply (ERR_INTERNAL)\n');
        } else expect({ code: outcome.code, stderr: outcome.stderr }).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });

  it('reports every reply to a sent `set` itself (it is never sent twice)', async () => {
    await fc.assert(
      fc.asyncProperty(frameArb, async (frame) => {
        const outcome = await runClient(['secrets', 'set', 'v:a'], Buffer.concat([frame, Buffer.from('\n')]));
        checkSane(outcome);
        expect(outcome.code).not.toBe(FALLBACK_EXIT);
        const want = expected(frame, 2, 'set');
        if ('code' in want) expect({ code: outcome.code, stderr: outcome.stderr }).toEqual(want);
      }),
      { numRuns: 150 },
    );
    const saved = await runClient(['secrets', 'set', 'v:a'], Buffer.from(`{"v":1,"id":2,"result":{"commit":"${'ab'.repeat(20)}","changed":true}}\n`));
    expect({ code: saved.code, stdout: saved.stdout.toString() }).toEqual({ code: 0, stdout: `Saved v:a (commit ${'ab'.repeat(6)})\n` });
  });

  it('stops at the frame limit, survives deep nesting, split frames and silence', async () => {
    // Over the limit, with or without a newline: refused as the Node client refuses it.
    for (const frames of [Buffer.alloc(5000, 0x7b), Buffer.concat([Buffer.alloc(5000, 0x20), Buffer.from('{}\n')])]) {
      const outcome = await runClient(['secrets', 'get', 'v:a'], frames, { KEYNODE_NATIVE_MAX_REPLY_BYTES: '1000' });
      checkSane(outcome);
      expect({ code: outcome.code, stderr: outcome.stderr }).toEqual({ code: 2, stderr: 'keynode: the agent sent an oversized frame (ERR_INVALID_REQUEST)\n' });
    }
    // 200,000 levels of nesting: no stack overflow, one error line.
    const deep = Buffer.concat([Buffer.from('{"id":1,"result":'), Buffer.alloc(200_000, 0x5b), Buffer.alloc(200_000, 0x5d), Buffer.from('}\n')]);
    checkSane(await runClient(['secrets', 'get', 'v:a'], deep));
    // Frames for other requests first, then the reply, all in one write.
    const many = Buffer.from(`{"id":5,"result":1}\n\n{"id":"1","error":{}}\n{"v":1,"id":1,"result":{"value":"aGk="}}\n`);
    const outcome = await runClient(['secrets', 'get', 'v:a'], many);
    expect({ code: outcome.code, stdout: outcome.stdout.toString() }).toEqual({ code: 0, stdout: 'hi' });
    // An id JSON.parse reads as 1 however long it is written.
    const longId = await runClient(['secrets', 'get', 'v:a'], Buffer.from(`{"v":1,"id":1.${'0'.repeat(500)},"result":{"value":"aGk="}}\n`));
    expect({ code: longId.code, stdout: longId.stdout.toString() }).toEqual({ code: 0, stdout: 'hi' });
    // A close without a reply: `get` goes to Node; `set` reports it.
    expect((await runClient(['secrets', 'get', 'v:a'], Buffer.alloc(0))).code).toBe(FALLBACK_EXIT);
    const closed = await runClient(['secrets', 'set', 'v:a'], Buffer.from('{"id":2'));
    expect({ code: closed.code, stderr: closed.stderr }).toEqual({ code: 12, stderr: 'keynode: the agent closed the connection (ERR_AGENT_NOT_RUNNING)\n' });
  });

  // Where the kernel writes cores into the crashing process's directory, a crash of a client that
  // holds the token (and soon the value) must leave none: it makes itself non-dumpable first.
  const corePattern = fs.existsSync('/proc/sys/kernel/core_pattern') ? fs.readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim() : '|';
  it.skipIf(corePattern.startsWith('|') || corePattern.includes('/'))('leaves no core dump when it crashes holding the session token', async () => {
    const cwd = fs.mkdtempSync(path.join(root, 'cwd-'));
    const child = spawn('/bin/sh', ['-c', 'ulimit -c unlimited 2>/dev/null; exec "$@"', 'sh', NATIVE, 'secrets', 'set', 'v:a'], { cwd, env, stdio: ['pipe', 'ignore', 'ignore'] });
    onProbe = () => child.kill('SIGSEGV'); // stdin still open: it waits for the value
    const ended = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    onProbe = undefined;
    child.stdin.destroy();
    // Killed by it (a sanitizer build catches it and exits non-zero instead).
    expect(ended.signal === 'SIGSEGV' || (ended.code !== null && ended.code !== 0)).toBe(true);
    expect(fs.readdirSync(cwd)).toEqual([]);
  });
});
