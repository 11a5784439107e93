import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/Agent.js';
import { streamCounters, type AgentLimits } from '../../src/agent/Connection.js';
import { AgentConnection } from '../../src/client/AgentConnection.js';
import { STREAM_FRAME_MAX_BYTES, STREAM_MAX_QUEUED_BYTES } from '../../src/constants.js';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import type { SecretEntry } from '../../src/vaults/Vault.js';
import { createTestNode, TEST_PASSWORD } from '../helpers/index.js';

/**
 * Streamed replies (docs/api.md, "Streamed replies") at a size that matters: a listing of
 * 200,000 secrets. Asserted on what the agent did (frames, bytes queued, items taken from the
 * walk), never on time.
 */
const SECRETS = 200_000;
const name = (i: number) => `s${String(i).padStart(7, '0')}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let nodePath: string;
let expected: SecretEntry[];

// One node for the whole file (the helpers' temp dirs go after each test).
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keynode-stream-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

beforeAll(async () => {
  const created = await createTestNode(path.join(root, 'node'));
  nodePath = created.nodePath;
  const vault = await created.node.vaults.createVault('big');
  const value = Buffer.from('v');
  await vault.writeSecrets(Array.from({ length: SECRETS }, (_, i) => ({ path: name(i), value })));
  await vault.writeSecrets([
    { path: 'sub/a', value },
    { path: 'sub/b', value },
  ]);
  expected = await vault.list();
  created.node.close();
}, 120_000);

const running: Agent[] = [];
afterEach(async () => {
  while (running.length) await running.pop()!.stop();
});

async function startAgent(limits: Partial<AgentLimits> = {}) {
  const { agent, session } = await Agent.start({ nodePath, password: Buffer.from(TEST_PASSWORD), limits });
  running.push(agent);
  streamCounters.reset();
  return { agent, token: session.token };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let t = 0; !condition(); t++) {
    if (t > 1_000) throw new Error(`gave up waiting for ${what}`);
    await sleep(10);
  }
}

/** A raw socket client: frames as they come (parsed), and whether the agent closed it. */
async function rawClient(agent: Agent, { read = true } = {}) {
  const socket = net.connect(agent.socket);
  await new Promise((resolve) => socket.once('connect', resolve));
  const frames: Array<{ raw: number; id: unknown; chunk?: SecretEntry[]; end?: true; result?: unknown; error?: { code: string } }> = [];
  let text = '';
  let closed = false;
  socket.on('data', (d: Buffer) => {
    text += d.toString();
    for (let newline = text.indexOf('\n'); newline >= 0; newline = text.indexOf('\n')) {
      const line = text.slice(0, newline);
      frames.push({ raw: Buffer.byteLength(line) + 1, ...JSON.parse(line) });
      text = text.slice(newline + 1);
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  if (!read) socket.pause();
  return {
    socket,
    frames,
    get closed() {
      return closed;
    },
    send: (id: number, method: string, params: unknown, token: string) => socket.write(JSON.stringify({ v: 1, id, method, token, params }) + '\n'),
  };
}

describe('streamed listings through the agent (200,000 secrets)', () => {
  it('sends the listing in bounded frames, in order, ending with `end`, while queueing little', async () => {
    const { agent, token } = await startAgent();
    const client = await rawClient(agent);
    client.send(1, 'secrets.ls', { vault: 'big', path: '' }, token);
    await until(() => client.frames.some((f) => f.end || f.error || 'result' in f), 'the end of the stream');
    const last = client.frames.at(-1)!;
    expect(last).toMatchObject({ id: 1, end: true });
    const chunks = client.frames.filter((f) => f.chunk);
    expect(chunks.length).toBe(client.frames.length - 1);
    expect(chunks.flatMap((f) => f.chunk!)).toEqual(expected);
    // One frame per ~64 KiB: never the whole listing (~8 MB) in one.
    expect(Math.max(...client.frames.map((f) => f.raw))).toBeLessThanOrEqual(STREAM_FRAME_MAX_BYTES + 1024);
    expect(streamCounters.largestFrameBytes).toBeLessThanOrEqual(STREAM_FRAME_MAX_BYTES + 1024);
    expect(streamCounters.peakQueuedBytes).toBeLessThanOrEqual(STREAM_MAX_QUEUED_BYTES + STREAM_FRAME_MAX_BYTES + 1024);
    expect(streamCounters.itemsTaken).toBe(expected.length);
  });

  it('stops the walk when the client disconnects after the first frame', async () => {
    const { agent, token } = await startAgent();
    const client = await rawClient(agent);
    client.send(1, 'secrets.ls', { vault: 'big', path: '' }, token);
    await until(() => client.frames.length > 0, 'the first frame');
    client.socket.destroy();
    await until(() => agent.pendingWork.nodeRequests === 0 && agent.connectionCount === 0, 'the stream to stop');
    // What the socket took before the close, not the listing.
    expect(streamCounters.itemsTaken).toBeLessThan(SECRETS / 4);
  });

  it('holds a client that never reads to a bounded amount of work, then evicts it (write stall)', async () => {
    const { agent, token } = await startAgent({ writeStallMs: 300 });
    const client = await rawClient(agent, { read: false });
    client.send(1, 'secrets.ls', { vault: 'big', path: '' }, token);
    await until(() => streamCounters.itemsTaken > 0, 'the stream to start');
    await until(() => agent.connectionCount === 0, 'the eviction'); // the client, paused, sees no close
    await until(() => agent.pendingWork.nodeRequests === 0, 'the stream to stop');
    expect(streamCounters.itemsTaken).toBeLessThan(SECRETS / 4);
    expect(streamCounters.peakQueuedBytes).toBeLessThanOrEqual(STREAM_MAX_QUEUED_BYTES + STREAM_FRAME_MAX_BYTES + 1024);
  });

  it('cancels a stream its reader abandons (agent.cancel) and goes on serving the connection', async () => {
    const { agent, token } = await startAgent();
    const connection = (await AgentConnection.connect(agent.socket))!;
    try {
      let first: SecretEntry[] = [];
      for await (const page of connection.stream('secrets.ls', { vault: 'big', path: '' }, token)) {
        first = page;
        break;
      }
      expect(first).toEqual(expected.slice(0, first.length));
      expect(first.length).toBeGreaterThan(0);
      await until(() => agent.pendingWork.nodeRequests === 0, 'the cancelled stream to stop');
      expect(streamCounters.itemsTaken).toBeLessThan(SECRETS / 4);
      // The same connection still answers, streams included (whole, through `request`).
      expect(await connection.request('node.status', {}, token)).toMatchObject({ nodeId: expect.any(String) });
      expect((await connection.request('secrets.ls', { vault: 'big', path: 'sub' }, token)).entries).toEqual([
        { path: 'sub/a', type: 'secret' },
        { path: 'sub/b', type: 'secret' },
      ]);
    } finally {
      connection.close();
    }
  });

  it('locking aborts a stream whose reader stalls, with ERR_AGENT_LOCKED, instead of waiting for it', async () => {
    const { agent, token } = await startAgent();
    const client = await rawClient(agent, { read: false });
    client.send(1, 'secrets.ls', { vault: 'big', path: '' }, token);
    await until(() => streamCounters.itemsTaken > 0, 'the stream to start');
    await agent.lockNode('test');
    expect(agent.pendingWork.nodeRequests).toBe(0);
    client.socket.resume();
    await until(() => client.frames.some((f) => f.error), 'the error frame');
    expect(client.frames.at(-1)).toMatchObject({ id: 1, error: { code: 'ERR_AGENT_LOCKED' } });
    expect(streamCounters.itemsTaken).toBeLessThan(SECRETS / 4);
  });

  it('stops with a stalled stream open, leaving no work behind', async () => {
    const { agent, token } = await startAgent();
    running.pop();
    const client = await rawClient(agent, { read: false });
    client.send(1, 'secrets.ls', { vault: 'big', path: '' }, token);
    await until(() => streamCounters.itemsTaken > 0, 'the stream to start');
    await agent.stop();
    expect(agent.pendingWork).toEqual({ idleTimer: false, nodeRequests: 0, requests: 0 });
    await until(() => agent.connectionCount === 0, 'the destroyed connection to close');
    expect(streamCounters.itemsTaken).toBeLessThan(SECRETS / 4);
  });

  it('answers an error before any item as a plain error reply (unchanged for clients)', async () => {
    const { agent, token } = await startAgent();
    const client = await rawClient(agent);
    client.send(1, 'secrets.ls', { vault: 'nope', path: '' }, token);
    client.send(2, 'vaults.log', { name: 'big', extra: 1 }, token);
    await until(() => client.frames.length === 2, 'two replies');
    const byId = [...client.frames].sort((a, b) => Number(a.id) - Number(b.id));
    expect(byId.map((f) => [f.id, Object.keys(f).join(','), f.error?.code])).toEqual([
      [1, 'raw,v,id,error', 'ERR_VAULT_NOT_FOUND'],
      [2, 'raw,v,id,error', 'ERR_INVALID_REQUEST'],
    ]);
  });
});

describe('KeynodeNode stays usable by the library', () => {
  it('Vault.list still returns the whole array', async () => {
    const node = await KeynodeNode.open({ nodePath, password: TEST_PASSWORD });
    try {
      expect((await (await node.vaults.openVault('big')).list('sub')).length).toBe(2);
    } finally {
      node.close();
    }
  });
});
