import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AgentConnection } from '../../src/client/AgentConnection.js';
import { KeynodeError } from '../../src/errors.js';

/** A fake agent: answers each request line with `reply(request, socket)`; records what it got. */
async function fakeAgent(reply: (request: { id: number; method: string; params: unknown }, socket: net.Socket) => void) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keynode-fake-agent-'));
  fs.chmodSync(dir, 0o700);
  const socketPath = path.join(dir, 'agent.sock');
  const received: Array<{ id: number; method: string; params: unknown }> = [];
  const server = net.createServer((socket) => {
    let text = '';
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      for (let newline = text.indexOf('\n'); newline >= 0; newline = text.indexOf('\n')) {
        const request = JSON.parse(text.slice(0, newline)) as { id: number; method: string; params: unknown };
        text = text.slice(newline + 1);
        received.push(request);
        reply(request, socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  fs.chmodSync(socketPath, 0o600);
  cleanups.push(() => {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { socketPath, received };
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  vi.restoreAllMocks();
  while (cleanups.length) cleanups.pop()!();
});

const entry = (i: number) => ({ path: `s${i}`, type: 'secret' as const });
const line = (value: unknown) => JSON.stringify(value) + '\n';

async function drain<T>(pages: AsyncIterable<T[]>): Promise<T[]> {
  const items: T[] = [];
  for await (const page of pages) items.push(...page);
  return items;
}

describe('AgentConnection streams', () => {
  it('yields the pages of chunk frames until end, and `request` rebuilds the whole result', async () => {
    const agent = await fakeAgent((request, socket) => {
      socket.write(line({ v: 1, id: request.id, chunk: [entry(1), entry(2)] }));
      socket.write(line({ v: 1, id: request.id, chunk: [entry(3)] }));
      socket.write(line({ v: 1, id: request.id, end: true }));
    });
    const connection = (await AgentConnection.connect(agent.socketPath))!;
    try {
      const pages: unknown[][] = [];
      for await (const page of connection.stream('secrets.ls', { vault: 'v', path: '' }, 't')) pages.push(page);
      expect(pages).toEqual([[entry(1), entry(2)], [entry(3)]]);
      expect(await connection.request('vaults.log', { name: 'v' }, 't')).toEqual({ vault: 'v', commits: [entry(1), entry(2), entry(3)] });
    } finally {
      connection.close();
    }
  });

  it('takes the whole result of an agent from before streams', async () => {
    const agent = await fakeAgent((request, socket) => socket.write(line({ v: 1, id: request.id, result: { entries: [entry(1), entry(2)] } })));
    const connection = (await AgentConnection.connect(agent.socketPath))!;
    try {
      expect(await drain(connection.stream('secrets.ls', { vault: 'v', path: '' }, 't'))).toEqual([entry(1), entry(2)]);
    } finally {
      connection.close();
    }
  });

  it('throws an error frame that ends a stream, after the items before it', async () => {
    const agent = await fakeAgent((request, socket) => {
      socket.write(line({ v: 1, id: request.id, chunk: [entry(1)] }));
      socket.write(line({ v: 1, id: request.id, error: { code: 'ERR_INTEGRITY', message: 'damaged' } }));
    });
    const connection = (await AgentConnection.connect(agent.socketPath))!;
    try {
      const seen: unknown[] = [];
      const failure = await (async () => {
        for await (const page of connection.stream('secrets.ls', { vault: 'v', path: '' }, 't')) seen.push(...page);
      })().catch((error: unknown) => error);
      expect(seen).toEqual([entry(1)]);
      expect(failure).toBeInstanceOf(KeynodeError);
      expect((failure as KeynodeError).code).toBe('ERR_INTEGRITY');
    } finally {
      connection.close();
    }
  });

  it('stops reading its socket while frames wait for a slow reader, and cancels a stream it abandons', async () => {
    const pause = vi.spyOn(net.Socket.prototype, 'pause');
    const agent = await fakeAgent((request, socket) => {
      if (request.method === 'agent.cancel') return void socket.write(line({ v: 1, id: request.id, result: { cancelled: true } }));
      for (let i = 0; i < 50; i++) socket.write(line({ v: 1, id: request.id, chunk: [entry(i)] }));
    });
    const connection = (await AgentConnection.connect(agent.socketPath))!;
    try {
      const stream = connection.stream('secrets.ls', { vault: 'v', path: '' }, 't');
      expect((await stream.next()).value).toEqual([entry(0)]);
      // The reader waits: frames pile up to the client's bound, then the socket is paused.
      for (let t = 0; t < 200 && pause.mock.calls.length === 0; t++) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(pause).toHaveBeenCalled();
      await stream.return(undefined);
      for (let t = 0; t < 200 && !agent.received.some((r) => r.method === 'agent.cancel'); t++) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(agent.received.find((r) => r.method === 'agent.cancel')?.params).toEqual({ id: agent.received[0]!.id });
    } finally {
      connection.close();
    }
  });
});
