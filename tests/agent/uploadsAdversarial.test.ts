import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/Agent.js';
import type { AgentLimits } from '../../src/agent/Connection.js';
import { binaryChunkHeader } from '../../src/ipc/framing.js';
import { createTestNode, TEST_PASSWORD } from '../helpers/index.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keynode-upadv-'));
let nodePath: string;
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
beforeAll(async () => {
  const created = await createTestNode(path.join(root, 'node'));
  nodePath = created.nodePath;
  await created.node.vaults.createVault('app');
  created.node.close();
});

const running: Agent[] = [];
afterEach(async () => {
  while (running.length) await running.pop()!.stop();
});

async function startAgent(limits: Partial<AgentLimits> = {}) {
  const { agent, session } = await Agent.start({ nodePath, password: Buffer.from(TEST_PASSWORD), limits });
  running.push(agent);
  return { agent, token: session.token };
}

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (const start = Date.now(); !condition(); await sleep(10)) if (Date.now() - start > ms) throw new Error(`gave up waiting for ${what}`);
}

type Frame = { id: unknown; result?: unknown; error?: { code: string; message: string }; end?: true; chunk?: unknown[] };
async function rawClient(agent: Agent) {
  const socket = net.connect(agent.socket);
  await new Promise((resolve) => socket.once('connect', resolve));
  const frames: Frame[] = [];
  let pieces: Buffer[] = [];
  let closed = false;
  // Only JSON replies come to these clients (no secrets.getStream); a line is searched for once.
  socket.on('data', (d: Buffer) => {
    for (let start = 0, nl = d.indexOf(10); ; nl = d.indexOf(10, start)) {
      if (nl < 0) {
        pieces.push(d.subarray(start));
        break;
      }
      frames.push(JSON.parse(Buffer.concat([...pieces, d.subarray(start, nl)]).toString('utf8')) as Frame);
      pieces = [];
      start = nl + 1;
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  return {
    socket,
    frames,
    get closed() {
      return closed;
    },
    request: (id: number | string, method: string, params: unknown, token?: string) => socket.write(JSON.stringify({ v: 1, id, method, token, params }) + '\n'),
    chunk: (id: number, bytes: Buffer) => socket.write(Buffer.concat([binaryChunkHeader(id, bytes.length), bytes])),
    end: (id: number | string) => socket.write(JSON.stringify({ v: 1, id, end: true }) + '\n'),
    replyTo: (id: unknown) => frames.find((f) => f.id === id && ('result' in f || f.error)),
  };
}

async function valueOf(agent: Agent, token: string, p: string) {
  const c = await rawClient(agent);
  c.request('g', 'secrets.get', { vault: 'app', path: p }, token);
  await until(() => c.replyTo('g') !== undefined, 'get');
  c.socket.destroy();
  const r = c.replyTo('g')!;
  return r.error ? r.error.code : Buffer.from((r.result as { value: string }).value, 'base64');
}

type Raw = Awaited<ReturnType<typeof rawClient>>;
async function authenticated(agent: Agent, token: string): Promise<Raw> {
  const client = await rawClient(agent);
  client.request('auth', 'node.status', {}, token);
  await until(() => client.replyTo('auth') !== undefined, 'authentication');
  return client;
}
const connectionsOf = (agent: Agent) => [...(agent as unknown as { connections: Set<{ bodies: Map<unknown, unknown> }> }).connections];

/**
 * Hostile and careless clients of streamed request bodies (docs/api.md, "Streamed request bodies
 * and binary chunk frames"): each ends in a clear error or a closed connection, the agent goes
 * on serving, and nothing wrong is committed.
 */
describe('streamed request bodies against hostile clients', () => {
  it('closes an unauthenticated connection whose binary header claims 4 GiB once 64 KiB have come', async () => {
    const { agent } = await startAgent();
    const client = await rawClient(agent);
    client.socket.write(binaryChunkHeader(1, 0xffff_ffff));
    client.socket.write(Buffer.alloc(100 * 1024, 7));
    await until(() => client.closed, 'the close');
    expect(client.frames).toMatchObject([{ id: null, error: { code: 'ERR_INVALID_REQUEST', message: expect.stringMatching(/64 KiB before/) } }]);
  });

  // Before the fix the agent read a binary frame up to the 128 MiB frame limit (and only then
  // refused a body chunk over 4 MiB): an owner's client could make it hold 128 MiB per connection.
  it('refuses a binary frame on a header declaring more than 4 MiB, before holding its payload', async () => {
    const { agent, token } = await startAgent();
    const client = await authenticated(agent, token);
    client.request(1, 'secrets.setStream', { vault: 'app', path: 'huge' }, token);
    client.socket.write(binaryChunkHeader(1, 100 * MiB));
    client.socket.write(Buffer.alloc(MiB, 1));
    await until(() => client.closed, 'the close');
    expect(client.frames.find((f) => f.id === null)?.error?.message).toMatch(/binary frame is limited to 4 MiB/);
    expect(await valueOf(agent, token, 'huge')).toBe('ERR_SECRET_NOT_FOUND');
  });

  // The size checks come after the frames ahead are started: the upload request, first on a new
  // connection, authenticates it before its own 1 MiB chunk (in the same write) is measured.
  it('takes an upload whose request and chunks come in one write on a new connection', async () => {
    const { agent, token } = await startAgent();
    const client = await rawClient(agent);
    const request = JSON.stringify({ v: 1, id: 1, method: 'secrets.setStream', token, params: { vault: 'app', path: 'burst', size: MiB } }) + '\n';
    const end = JSON.stringify({ v: 1, id: 1, end: true }) + '\n';
    client.socket.write(Buffer.concat([Buffer.from(request), binaryChunkHeader(1, MiB), Buffer.alloc(MiB, 9), Buffer.from(end)]));
    await until(() => client.replyTo(1) !== undefined || client.closed, 'the reply');
    expect(client.replyTo(1)).toMatchObject({ result: { changed: true } });
    expect(Buffer.alloc(MiB, 9).equals((await valueOf(agent, token, 'burst')) as Buffer)).toBe(true);
  });

  it('answers chunks for no upload, of an unknown kind or after `end` with errors, and stays usable', async () => {
    const { agent, token } = await startAgent();
    const client = await authenticated(agent, token);
    client.chunk(99, Buffer.alloc(10));
    const unknownKind = binaryChunkHeader(5, 0);
    unknownKind[1] = 9;
    client.socket.write(unknownKind);
    client.request(2, 'secrets.setStream', { vault: 'app', path: 'exact', size: 20 }, token);
    client.chunk(2, Buffer.alloc(10, 1));
    client.chunk(2, Buffer.alloc(10, 2));
    client.end(2);
    await until(() => client.replyTo(2) !== undefined, 'the upload');
    client.chunk(2, Buffer.alloc(10, 3));
    client.request(3, 'agent.status', {});
    await until(() => client.replyTo(3) !== undefined, 'a later request');
    expect(client.frames.filter((f) => f.error).map((f) => [f.id, f.error!.code])).toEqual([
      [99, 'ERR_INVALID_REQUEST'],
      [null, 'ERR_INVALID_REQUEST'],
      [2, 'ERR_INVALID_REQUEST'],
    ]);
    expect(await valueOf(agent, token, 'exact')).toEqual(Buffer.concat([Buffer.alloc(10, 1), Buffer.alloc(10, 2)]));
    expect(client.closed).toBe(false);
  });

  it('stores nothing for more bytes than declared, and the right bytes when a second upload interleaves its chunks', async () => {
    const { agent, token } = await startAgent();
    const client = await authenticated(agent, token);
    client.request(3, 'secrets.setStream', { vault: 'app', path: 'long', size: 5 }, token);
    client.chunk(3, Buffer.alloc(10, 1));
    client.end(3);
    await until(() => client.replyTo(3) !== undefined, 'the long upload');
    expect(client.replyTo(3)!.error?.code).toBe('ERR_INVALID_ARGUMENT');
    expect(await valueOf(agent, token, 'long')).toBe('ERR_SECRET_NOT_FOUND');
    client.request(4, 'secrets.setStream', { vault: 'app', path: 'four', size: 3 * MiB }, token);
    client.request(5, 'secrets.setStream', { vault: 'app', path: 'five', size: 3 * MiB }, token);
    for (let i = 0; i < 3; i++) {
      client.chunk(4, Buffer.alloc(MiB, 40 + i));
      client.chunk(5, Buffer.alloc(MiB, 50 + i));
    }
    client.end(4);
    client.end(5);
    await until(() => [4, 5].every((id) => client.replyTo(id) !== undefined), 'the uploads');
    expect(client.replyTo(5)!.error?.code).toBe('ERR_AGENT_BUSY');
    expect(client.replyTo(4)).toMatchObject({ result: { changed: true } });
    // Buffer.equals: a deep toEqual on megabytes takes seconds.
    const four = await valueOf(agent, token, 'four');
    expect(Buffer.concat([0, 1, 2].map((i) => Buffer.alloc(MiB, 40 + i))).equals(four as Buffer)).toBe(true);
    expect(await valueOf(agent, token, 'five')).toBe('ERR_SECRET_NOT_FOUND');
  });

  // Before the fix the four uploads took all four in-flight slots of the connection: no chunk
  // frame could start, and the first upload failed after the 30 s stall timeout. Now an upload
  // waiting on its body takes no slot, and one connection runs one upload at a time (each holds
  // up to 4 MiB while it stages: 64 connections x 4 uploads took the agent to 2.4 GiB).
  it('runs one upload at a time on a connection, refusing more at once, and its chunks are never starved', async () => {
    const { agent, token } = await startAgent();
    const client = await authenticated(agent, token);
    for (let id = 1; id <= 4; id++) client.request(id, 'secrets.setStream', { vault: 'app', path: `many${id}`, size: 10 }, token);
    await until(() => [2, 3, 4].every((id) => client.replyTo(id) !== undefined), 'the refusals');
    expect([2, 3, 4].map((id) => client.replyTo(id)!.error?.code)).toEqual(['ERR_AGENT_BUSY', 'ERR_AGENT_BUSY', 'ERR_AGENT_BUSY']);
    client.chunk(1, Buffer.alloc(10, 1));
    client.end(1);
    await until(() => client.replyTo(1) !== undefined, 'the upload');
    expect(client.replyTo(1)).toMatchObject({ result: { changed: true } });
    expect(await valueOf(agent, token, 'many1')).toEqual(Buffer.alloc(10, 1));
    expect(await valueOf(agent, token, 'many2')).toBe('ERR_SECRET_NOT_FOUND');
    // The connection goes on: a next upload runs once the first is over.
    client.request(5, 'secrets.setStream', { vault: 'app', path: 'many5', size: 3 }, token);
    client.chunk(5, Buffer.from('abc'));
    client.end(5);
    await until(() => client.replyTo(5) !== undefined, 'the next upload');
    expect(await valueOf(agent, token, 'many5')).toEqual(Buffer.from('abc'));
  }, 15_000);

  // Before the fix every upload that failed and never got its `end` (the Node client stops
  // sending on an early error) stayed in the connection's map for as long as the connection.
  it('forgets failed uploads whose `end` never comes, beyond a bounded number', async () => {
    const { agent, token } = await startAgent();
    const client = await authenticated(agent, token);
    for (let id = 1; id <= 300; id++) {
      client.request(id, 'secrets.setStream', { vault: 'nope', path: 'x' }, token);
      await until(() => client.replyTo(id) !== undefined, 'the reply');
    }
    expect(client.frames.filter((f) => f.error?.code === 'ERR_VAULT_NOT_FOUND')).toHaveLength(300);
    const sizes = connectionsOf(agent).map((c) => c.bodies.size);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1 + 64);
  });
});
