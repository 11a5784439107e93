import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliSandbox } from '../helpers/cli.js';

/**
 * Floods a real agent process on its socket and reads its memory from /proc (VmHWM, the peak
 * resident size, reset before each scenario through clear_refs). Each scenario also has the
 * owner run `secrets get` while the flood holds the agent. CI-sized; figures for bigger floods:
 * `node scripts/agent-flood.mjs`.
 */
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let cli: ReturnType<typeof cliSandbox>;
let pid: number;
let socketPath: string;
let token: string;

function memory(): { rssMiB: number; peakMiB: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)![1]);
  return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
}

/** Start a scenario: the agent's peak is reset to its current size, which is returned. */
function resetPeak(): number {
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
  return memory().rssMiB;
}

function connectOnce(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Connect, waiting while the listen backlog is full (EAGAIN: the agent has not accepted yet). */
async function connect(): Promise<net.Socket> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await connectOnce();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN' || attempt > 200) throw error;
      await sleep(10);
    }
  }
}

/** Write, resolving once the data is taken (false when the socket closed or nothing was taken within `patienceMs`). */
function send(socket: net.Socket, data: Buffer | string, patienceMs = 5000): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(false);
    if (socket.write(data)) return resolve(true);
    const done = (taken: boolean) => {
      clearTimeout(timer);
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      resolve(taken);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const timer = setTimeout(() => done(false), patienceMs);
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

/** The owner's everyday command, run while the flood goes on. */
async function ownerGets(): Promise<{ code: number; out: string; stderr: string }> {
  const result = await cli.runAsync(['secrets', 'get', 'app:small'], { env: { KEYNODE_PASSWORD: undefined } });
  return { code: result.code, out: result.out, stderr: result.stderr };
}

const figures: string[] = [];

// A fresh node and agent per test: the sandbox's directory goes after each test.
beforeEach(() => {
  cli = cliSandbox();
  cli.init();
  cli.ok(['vaults', 'create', 'app']);
  cli.ok(['secrets', 'set', 'app:small'], { input: 'small-value' });
  cli.ok(['secrets', 'set', 'app:big'], { input: Buffer.alloc(4 * MiB, 0x41) });
  ({ pid, socket: socketPath } = cli.ok(['agent', 'start', '--background', '--json']).json());
  const runtime = path.join(cli.env.XDG_RUNTIME_DIR!, 'keynode');
  token = JSON.parse(
    fs.readFileSync(
      path.join(
        runtime,
        fs.readdirSync(runtime).find((f) => f.startsWith('session-'))!,
      ),
      'utf8',
    ),
  ).token;
});

afterEach(() => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
});

afterAll(() => {
  if (figures.length) process.stdout.write(`agent flood figures:\n  ${figures.join('\n  ')}\n`);
});

describe('the agent under a flood on its socket (separate process)', () => {
  it('stops reading pipelined requests whose replies are not taken, and answers every one', async () => {
    const before = resetPeak();
    const socket = await connect();
    let replies = 0;
    socket.on('data', (d: Buffer) => {
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) replies++;
    });
    socket.pause(); // take no replies for now
    const batch = Buffer.from('{"v":1,"id":1,"method":"secrets.get","params":{"vault":"app","path":"small"}}\n'.repeat(1000));
    const total = 100_000;
    let sent = 0;
    const writer = (async () => {
      while (sent < total && (await send(socket, batch, 60_000))) sent += 1000;
    })();
    await sleep(1000);
    const acceptedUnread = sent * 78;
    const owner = await ownerGets();
    socket.resume();
    await writer;
    for (let t = 0; replies < total && t < 600; t++) await sleep(50);
    socket.destroy();
    const grew = memory().peakMiB - before;
    figures.push(
      `${total} pipelined unauthenticated requests: ${(acceptedUnread / MiB).toFixed(2)} MiB taken while replies were unread, all ${replies} answered, peak +${grew.toFixed(0)} MiB`,
    );
    expect(owner).toEqual({ code: 0, out: 'small-value', stderr: '' });
    expect(acceptedUnread).toBeLessThan(4 * MiB); // the agent stopped reading (before: it read on without end)
    expect(replies).toBe(total);
    expect(grew).toBeLessThan(96);
  }, 120_000);

  it('refuses large frames before authentication at 64 KiB', async () => {
    const before = resetPeak();
    const chunk = Buffer.alloc(MiB, 0x61);
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const socket = await connect();
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString()));
        socket.on('error', () => {});
        let offered = 0;
        for (let i = 0; i < 120 && (await send(socket, chunk, 2000)); i++) offered += chunk.length;
        await sleep(100);
        socket.destroy();
        return { taken: offered, reply: text };
      }),
    );
    const owner = await ownerGets();
    const grew = memory().peakMiB - before;
    figures.push(
      `10 partial 120 MiB frames, unauthenticated: each refused after < ${Math.max(...outcomes.map((o) => o.taken)) / MiB + 1} MiB, peak +${grew.toFixed(0)} MiB`,
    );
    for (const { taken, reply } of outcomes) {
      expect(taken).toBeLessThan(8 * MiB);
      expect(JSON.parse(reply.split('\n')[0]!)).toMatchObject({ id: null, error: { code: 'ERR_INVALID_REQUEST', message: expect.stringContaining('64 KiB') } });
    }
    expect(owner).toEqual({ code: 0, out: 'small-value', stderr: '' });
    expect(grew).toBeLessThan(64);
  }, 120_000);

  it('bounds the replies it holds for a client that does not take them', async () => {
    const before = resetPeak();
    const socket = await connect();
    socket.on('error', () => {});
    socket.pause();
    const gets = Array.from({ length: 200 }, (_, i) => `{"v":1,"id":${i},"method":"secrets.get","token":"${token}","params":{"vault":"app","path":"big"}}\n`);
    await send(socket, gets.join(''), 2000);
    await sleep(2000);
    const owner = await ownerGets();
    const grew = memory().peakMiB - before;
    socket.destroy();
    figures.push(`200 pipelined 4 MiB reads, unread: peak +${grew.toFixed(0)} MiB`);
    expect(owner).toEqual({ code: 0, out: 'small-value', stderr: '' });
    // At most 4 requests run per connection, and none starts while replies wait: 4 × (4 MiB value, its base64, the reply).
    expect(grew).toBeLessThan(128);
  }, 120_000);

  it('keeps at most 64 connections, closing idle ones politely, and still serves its owner', async () => {
    const before = resetPeak();
    const sockets: net.Socket[] = [];
    let busy = 0;
    for (let i = 0; i < 2000; i++) {
      const socket = await connect();
      socket.on('error', () => {});
      socket.on('data', (d: Buffer) => d.toString().includes('ERR_AGENT_BUSY') && busy++);
      sockets.push(socket);
    }
    await sleep(300);
    const owner = await ownerGets();
    await sleep(100);
    const open = sockets.filter((s) => !s.destroyed && !s.readableEnded).length;
    const grew = memory().peakMiB - before;
    for (const socket of sockets) socket.destroy();
    figures.push(`2000 idle connections: ${open} kept, ${busy} told ERR_AGENT_BUSY, peak +${grew.toFixed(0)} MiB`);
    expect(owner).toEqual({ code: 0, out: 'small-value', stderr: '' });
    expect(open).toBeLessThanOrEqual(64);
    expect(busy).toBeGreaterThanOrEqual(2000 - 64);
    expect(grew).toBeLessThan(64);
  }, 120_000);
});
