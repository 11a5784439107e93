import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Agent } from '../../src/agent/Agent.js';
import type { AgentLimits } from '../../src/agent/Connection.js';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import { createTestNode, lockPresent, tempDir, TEST_KDF, TEST_PASSWORD } from '../helpers/index.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const running: Agent[] = [];
afterEach(async () => {
  while (running.length) await running.pop()!.stop();
});

async function startAgent(limits: Partial<AgentLimits> = {}) {
  const { node, nodePath } = await createTestNode();
  node.close();
  const { agent, session } = await Agent.start({ nodePath, password: Buffer.from(TEST_PASSWORD), limits });
  running.push(agent);
  return { agent, token: session.token };
}

/** A raw client: replies as parsed lines, and whether the agent closed it. */
async function rawClient(agent: Agent) {
  const socket = net.connect(agent.socket);
  await new Promise((resolve) => socket.once('connect', resolve));
  const replies: Array<{ id: unknown; result?: unknown; error?: { code: string; message: string } }> = [];
  let text = '';
  let closed = false;
  socket.on('data', (d: Buffer) => {
    text += d.toString();
    for (let newline = text.indexOf('\n'); newline >= 0; newline = text.indexOf('\n')) {
      replies.push(JSON.parse(text.slice(0, newline)));
      text = text.slice(newline + 1);
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  const until = async (condition: () => boolean, what: string) => {
    for (let t = 0; !condition(); t++) {
      if (t > 500) throw new Error(`gave up waiting for ${what}`);
      await sleep(10);
    }
  };
  return {
    socket,
    replies,
    get closed() {
      return closed;
    },
    send: (line: string) => socket.write(line + '\n'),
    /** The reply to request `id`. */
    reply: async (id: unknown) => {
      await until(() => replies.some((r) => r.id === id), `the reply to ${String(id)}`);
      return replies.find((r) => r.id === id)!;
    },
    until,
  };
}

const request = (id: number, method: string, params?: unknown, token?: string) =>
  JSON.stringify({ v: 1, id, method, ...(token ? { token } : {}), ...(params === undefined ? {} : { params }) });

describe('Agent socket limits (in process, lowered limits)', () => {
  it('takes large frames only from a connection that has authenticated', async () => {
    const { agent, token } = await startAgent({ unauthenticatedMaxFrameBytes: 1 * KiB });
    const stranger = await rawClient(agent);
    stranger.send(request(1, 'agent.status', { pad: 'x'.repeat(2 * KiB) }));
    const refused = await stranger.reply(null);
    expect(refused.error).toEqual({
      code: 'ERR_INVALID_REQUEST',
      message: 'invalid request: frame too large (the limit is 1 KiB before the connection has authenticated)',
    });
    await stranger.until(() => stranger.closed, 'the close');

    const owner = await rawClient(agent);
    owner.send(request(1, 'node.status', {}, token));
    expect((await owner.reply(1)).result).toMatchObject({ nodeId: expect.any(String) });
    owner.send(request(2, 'secrets.get', { vault: 'x'.repeat(2 * KiB), path: 'p' }, token));
    expect((await owner.reply(2)).error?.code).toBe('ERR_VAULT_NOT_FOUND'); // parsed and answered: no frame limit hit
  });

  it('closes a connection whose frame does not complete in time, and idle connections', async () => {
    const { agent } = await startAgent({ frameTimeoutMs: 150, connectionIdleMs: 300 });
    const slow = await rawClient(agent);
    slow.socket.write('{"v":1,"id":1,"method":"agent.st');
    const timedOut = await slow.reply(null);
    expect(timedOut.error).toEqual({ code: 'ERR_INVALID_REQUEST', message: 'invalid request: a frame was not completed within 0.15 s' });
    await slow.until(() => slow.closed, 'the slow client closed');

    const idle = await rawClient(agent);
    idle.send(request(1, 'agent.status'));
    await idle.reply(1);
    await idle.until(() => idle.closed, 'the idle client closed');
    await idle.until(() => agent.connectionCount === 0, 'the agent to let both go');
  });

  it('keeps at most maxConnections: evicts the longest idle, else says it is busy', async () => {
    const { agent } = await startAgent({ maxConnections: 3 });
    const first = await rawClient(agent);
    const others = [await rawClient(agent), await rawClient(agent)];
    await first.until(() => agent.connectionCount === 3, 'three connections');
    const fourth = await rawClient(agent);
    expect((await first.reply(null)).error?.code).toBe('ERR_AGENT_BUSY'); // the longest idle made room
    await first.until(() => first.closed, 'the evicted client closed');
    fourth.send(request(1, 'agent.status'));
    expect((await fourth.reply(1)).result).toMatchObject({ locked: false });

    // Unauthenticated connections that only trickle a frame in (slowloris) make room too.
    for (const client of [...others, fourth]) client.socket.write('{"v":1,');
    await sleep(50);
    const fifth = await rawClient(agent);
    await fifth.until(() => [...others, fourth].some((client) => client.closed), 'a slow unauthenticated sender evicted');
    expect(fifth.closed).toBe(false);
    expect(agent.connectionCount).toBe(3);
  });

  it('never evicts an authenticated connection in the middle of a frame: a newcomer is told the agent is busy', async () => {
    const { agent, token } = await startAgent({ maxConnections: 3 });
    const owners = [await rawClient(agent), await rawClient(agent), await rawClient(agent)];
    for (const [i, owner] of owners.entries()) {
      owner.send(request(i, 'node.status', {}, token));
      await owner.reply(i);
      owner.socket.write('{"v":1,');
    }
    await sleep(50);
    const newcomer = await rawClient(agent);
    newcomer.send(request(9, 'agent.status')); // written before the refusal is read: still gets the reason
    expect((await newcomer.reply(null)).error).toEqual({ code: 'ERR_AGENT_BUSY', message: 'the agent is busy: 3 connections are open and working; try again' });
    expect(owners.every((owner) => !owner.closed)).toBe(true);
    expect(agent.connectionCount).toBe(3);
  });

  it('drops a client that takes no replies, after writeStallMs', async () => {
    const { agent, token } = await startAgent({ writeStallMs: 300 });
    const owner = await rawClient(agent);
    owner.send(request(1, 'vaults.create', { name: 'app' }, token));
    await owner.reply(1);
    owner.send(request(2, 'secrets.set', { vault: 'app', path: 'big', value: Buffer.alloc(4 * MiB, 1).toString('base64') }, token));
    expect((await owner.reply(2)).result).toMatchObject({ changed: true });

    const reader = await rawClient(agent);
    reader.socket.pause(); // never reads
    reader.socket.write(request(0, 'node.status', {}, token) + '\n');
    for (let i = 1; i <= 20; i++) reader.socket.write(request(i, 'secrets.get', { vault: 'app', path: 'big' }, token) + '\n');
    await owner.until(() => reader.socket.destroyed || agent.connectionCount === 1, 'the stalled client dropped');
    expect(agent.connectionCount).toBe(1); // the owner's connection only
  });

  it('stops reading large frames past the agent-wide budget, and still serves small requests', async () => {
    const { agent, token } = await startAgent({ maxPendingBytes: 1 * MiB, unauthenticatedMaxFrameBytes: 4 * KiB });
    const senders = await Promise.all([rawClient(agent), rawClient(agent), rawClient(agent)]);
    for (const [i, sender] of senders.entries()) {
      sender.send(request(0, 'node.status', {}, token));
      await sender.reply(0);
      sender.socket.write(`{"v":1,"id":1,"method":"secrets.set","token":"${token}","params":{"vault":"app","path":"p${i}","value":"`);
      sender.socket.write(Buffer.alloc(8 * MiB, 0x41)); // never completed
    }
    await sleep(300);
    const held = agent.pendingBytes;
    expect(held).toBeGreaterThan(1 * MiB); // it did read up to the budget
    expect(held).toBeLessThan(1 * MiB + 3 * 512 * KiB); // and then stopped: one read's worth over, per connection
    const owner = await rawClient(agent);
    owner.send(request(1, 'node.status', {}, token));
    expect((await owner.reply(1)).result).toMatchObject({ nodeId: expect.any(String) });
  });

  it('answers bad requests with clear errors, never ERR_INTERNAL', async () => {
    const { agent, token } = await startAgent();
    const client = await rawClient(agent);
    client.send(request(0, 'node.status', {}, token)); // authenticated: large frames are parsed
    await client.reply(0);
    const deep = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
    const frames: Array<[string, string, RegExp]> = [
      ['unlock with params null', '{"v":1,"id":1,"method":"session.unlock","params":null}', /params must be an object/],
      ['unlock with params an array', '{"v":1,"id":2,"method":"session.unlock","params":["pw"]}', /params must be an object/],
      ['unlock with a number password', '{"v":1,"id":3,"method":"session.unlock","params":{"password":5}}', /params must be \{ password: string \}/],
      ['unlock with __proto__', '{"v":1,"id":4,"method":"session.unlock","params":{"__proto__":{"password":"x"}}}', /params must be \{ password: string \}/],
      ['a method with params null', `{"v":1,"id":5,"method":"secrets.get","token":"${token}","params":null}`, /params must be an object/],
      [
        'a "constructor" param',
        `{"v":1,"id":6,"method":"secrets.get","token":"${token}","params":{"vault":"a","path":"b","constructor":1}}`,
        /params.constructor is not a known field/,
      ],
      [
        'a "__proto__" param',
        `{"v":1,"id":7,"method":"secrets.get","token":"${token}","params":{"vault":"a","path":"b","__proto__":{}}}`,
        /params.__proto__ is not a known field/,
      ],
      [
        'a relative export path',
        `{"v":1,"id":8,"method":"vaults.exportBundle","token":"${token}","params":{"name":"a","file":"rel/out.bundle"}}`,
        /params.file must be an absolute path/,
      ],
      ['100k-deep params', `{"v":1,"id":9,"method":"secrets.get","token":"${token}","params":${deep(100_000)}}`, /params must be an object/],
      [
        '100k-deep value',
        `{"v":1,"id":10,"method":"secrets.get","token":"${token}","params":{"vault":"a","path":"b","version":${deep(100_000)}}}`,
        /params.version must be a string/,
      ],
      ['a 1M-deep frame', `{"v":1,"id":11,"method":"x","params":${deep(1_000_000)}}`, /./],
      ['a 1M-deep object', '{"a":'.repeat(1_000_000) + '1' + '}'.repeat(1_000_000), /./],
      [
        'a transfer with a null target',
        `{"v":1,"id":12,"method":"secrets.transfer","token":"${token}","params":{"kind":"move","from":{"vault":"a","path":"b"},"to":null}}`,
        /params.to must be an object/,
      ],
      [
        'a too-large value',
        `{"v":1,"id":13,"method":"secrets.set","token":"${token}","params":{"vault":"a","path":"b","value":"${Buffer.alloc(64 * MiB + 3).toString('base64')}"}}`,
        /params.value is too large: values are limited to 64 MiB/,
      ],
    ];
    for (const [, frame] of frames) client.send(frame);
    await client.until(() => client.replies.length >= frames.length + 1, 'every reply');
    const errors = client.replies.slice(1).map((r) => r.error);
    expect(errors.filter((e) => e?.code === 'ERR_INTERNAL')).toEqual([]);
    for (const [label, , message] of frames.slice(0, 10).concat(frames.slice(12))) {
      const id = JSON.parse(frames.find(([l]) => l === label)![1]).id as number;
      expect((await client.reply(id)).error?.message, label).toMatch(message);
    }
    expect(client.closed).toBe(false);
  }, 60_000);
});

describe('session.unlock', () => {
  it('takes the password as bytes (passwordBase64) or as text (password), exactly one of them', async () => {
    // Not UTF-8: as text (with replacement) both passwords would read "p\uFFFD\0w".
    const binary = Buffer.from([0x70, 0xff, 0x00, 0x77]);
    const lookalike = Buffer.from([0x70, 0xfe, 0x00, 0x77]);
    const nodePath = path.join(tempDir(), 'node');
    (await KeynodeNode.create({ nodePath, password: binary, kdf: TEST_KDF })).node.close();
    const { agent } = await Agent.start({ nodePath, password: Buffer.from(binary) });
    running.push(agent);
    await agent.lockNode('test');
    const client = await rawClient(agent);
    const unlock = async (id: number, params: unknown) => {
      client.send(request(id, 'session.unlock', params));
      return (await client.reply(id)).error?.code;
    };
    expect(await unlock(1, { passwordBase64: lookalike.toString('base64') })).toBe('ERR_WRONG_PASSWORD');
    expect(await unlock(2, { password: 'p\uFFFD\0w' })).toBe('ERR_WRONG_PASSWORD');
    expect(await unlock(3, { password: 'x', passwordBase64: binary.toString('base64') })).toBe('ERR_INVALID_REQUEST');
    expect(await unlock(4, {})).toBe('ERR_INVALID_REQUEST');
    expect(await unlock(5, { passwordBase64: 5 })).toBe('ERR_INVALID_REQUEST');
    // Not canonical (no padding, a space, a URL-safe letter): Buffer.from would read each as the password.
    for (const [id, spelling] of [binary.toString('base64').replace(/=+$/, ''), ` ${binary.toString('base64')}`, binary.toString('base64url')].entries()) {
      expect(await unlock(10 + id, { passwordBase64: spelling }), spelling).toBe('ERR_INVALID_REQUEST');
    }
    expect(agent.locked).toBe(true);
    client.send(request(20, 'session.unlock', { passwordBase64: binary.toString('base64') }));
    expect((await client.reply(20)).result).toMatchObject({ token: expect.any(String) });
    expect(agent.locked).toBe(false);
  });

  it('still takes { password: string } for a text password, as its UTF-8 bytes', async () => {
    const { agent } = await startAgent();
    await agent.lockNode('test');
    const client = await rawClient(agent);
    client.send(request(1, 'session.unlock', { password: TEST_PASSWORD }));
    expect((await client.reply(1)).result).toMatchObject({ token: expect.any(String) });
    client.send(request(2, 'session.unlock', { passwordBase64: Buffer.from(TEST_PASSWORD).toString('base64') }));
    expect((await client.reply(2)).result).toMatchObject({ token: expect.any(String) });
  });
});

describe('Agent lifecycle (services start and stop uniformly)', () => {
  // Timers are counted with vitest's fake timers (every pending one, unref'd or not); I/O stays real.
  const fakeTimers = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('starts and stops many times in one process, leaving no timer, socket or lock behind', async () => {
    const { node, nodePath } = await createTestNode();
    node.close();
    fakeTimers();
    for (let i = 0; i < 8; i++) {
      const { agent, session } = await Agent.start({ nodePath, password: Buffer.from(TEST_PASSWORD), idleTimeoutMs: 60_000 });
      expect(vi.getTimerCount()).toBe(2); // the connection sweep and the idle timer
      const client = net.connect(agent.socket);
      await new Promise((resolve) => client.once('connect', resolve));
      client.write(JSON.stringify({ v: 1, id: 1, method: 'vaults.list', token: session.token, params: {} }) + '\n');
      await new Promise((resolve) => client.once('data', resolve));
      client.destroy();
      await agent.stop();
      expect(vi.getTimerCount()).toBe(0);
      expect(agent.pendingWork).toEqual({ idleTimer: false, nodeRequests: 0, requests: 0 });
      expect(agent.connectionCount).toBe(0);
      expect(lockPresent(nodePath)).toBe(false);
    }
  });

  it('stops the idle timer when it locks and starts it again on unlock', async () => {
    const { node, nodePath } = await createTestNode();
    node.close();
    fakeTimers();
    const { agent } = await Agent.start({ nodePath, password: Buffer.from(TEST_PASSWORD), idleTimeoutMs: 60_000 });
    running.push(agent);
    expect(vi.getTimerCount()).toBe(2);
    for (let i = 0; i < 5; i++) {
      await agent.lockNode('test');
      expect(agent.locked).toBe(true);
      expect(vi.getTimerCount()).toBe(1); // only the connection sweep: no idle timer left to fire on a locked node
      await agent.unlock(Buffer.from(TEST_PASSWORD));
      expect(vi.getTimerCount()).toBe(2);
    }
  });

  it('locks on idle timeout through the same path: sessions revoked, keys dropped, timer stopped', async () => {
    const { node, nodePath } = await createTestNode();
    node.close();
    const { agent, session } = await Agent.start({ nodePath, password: Buffer.from(TEST_PASSWORD), idleTimeoutMs: 50 });
    running.push(agent);
    for (let t = 0; !agent.locked && t < 200; t++) await sleep(10);
    expect(agent.locked).toBe(true);
    expect(agent.status().sessions).toBe(0);
    expect(agent.pendingWork.idleTimer).toBe(false);
    const client = await rawClient(agent);
    client.send(JSON.stringify({ v: 1, id: 1, method: 'secrets.get', token: session.token, params: { vault: 'v', path: 'p' } }));
    expect((await client.reply(1)).error?.code).toBe('ERR_AGENT_LOCKED');
    client.socket.destroy();
  });
});
