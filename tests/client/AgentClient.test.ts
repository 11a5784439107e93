import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/Agent.js';
import { AgentClient } from '../../src/client/AgentClient.js';
import { AgentConnection } from '../../src/client/AgentConnection.js';
import { readSession, writeSession } from '../../src/client/sessionFile.js';
import { KeynodeError } from '../../src/errors.js';
import { sessionFile } from '../../src/ipc/paths.js';
import { createTestNode, tempDir, TEST_PASSWORD } from '../helpers/index.js';

const running: Agent[] = [];
let savedRuntime: string | undefined;
beforeEach(() => {
  savedRuntime = process.env.XDG_RUNTIME_DIR;
  const runtime = tempDir('keynode-run-');
  fs.chmodSync(runtime, 0o700);
  process.env.XDG_RUNTIME_DIR = runtime;
});
afterEach(async () => {
  while (running.length) await running.pop()!.stop();
  if (savedRuntime === undefined) delete process.env.XDG_RUNTIME_DIR;
  else process.env.XDG_RUNTIME_DIR = savedRuntime;
});

async function agentWithVault() {
  const { node, nodePath } = await createTestNode();
  await (await node.vaults.createVault('app')).writeSecret('db', Buffer.from('s3cret'));
  node.close();
  const { agent, session } = await Agent.start({ nodePath, password: Buffer.from(TEST_PASSWORD) });
  running.push(agent);
  return { agent, nodePath, session };
}

async function clientOf(agent: Agent, nodePath: string, password: () => Promise<string>) {
  const connection = (await AgentConnection.connect(agent.socket))!;
  return new AgentClient(connection, { nodePath, password });
}

describe('AgentClient (the one client of the CLI and its fast path)', () => {
  it('signs in once when it has no session, stores the token, and then uses it', async () => {
    const { agent, nodePath } = await agentWithVault();
    let asked = 0;
    const client = await clientOf(agent, nodePath, async () => (asked++, TEST_PASSWORD));
    const { value } = await client.call('secrets.get', { vault: 'app', path: 'db' });
    expect(Buffer.from(value, 'base64').toString()).toBe('s3cret');
    expect((await client.call('vaults.list', {})).vaults.map((v) => v.name)).toEqual(['app']);
    expect(asked).toBe(1);
    expect(readSession(nodePath)?.token).toMatch(/^[\w-]{43}$/);
    client.close();
    // A second client (another invocation) reads the stored token and never asks.
    const again = await clientOf(agent, nodePath, async () => (asked++, TEST_PASSWORD));
    await again.call('vaults.list', {});
    expect(asked).toBe(1);
    again.close();
  });

  it("reports the agent's reason when no password is to be had", async () => {
    const { agent, nodePath } = await agentWithVault();
    const client = await clientOf(agent, nodePath, async () => {
      throw new KeynodeError('ERR_PASSWORD_REQUIRED', 'none');
    });
    await expect(client.call('vaults.list', {})).rejects.toMatchObject({ code: 'ERR_UNAUTHENTICATED' });
    await agent.lockNode('test');
    const locked = await clientOf(agent, nodePath, async () => {
      throw new KeynodeError('ERR_PASSWORD_REQUIRED', 'none');
    });
    await expect(locked.call('vaults.list', {})).rejects.toMatchObject({ code: 'ERR_AGENT_LOCKED' });
    client.close();
    locked.close();
  });

  it('refreshes a token past half its life, and the old one stops working', async () => {
    const { agent, nodePath, session } = await agentWithVault();
    writeSession(nodePath, session);
    // Issued long ago: past half its life, not yet expired.
    const stored = JSON.parse(fs.readFileSync(sessionFile(nodePath), 'utf8'));
    fs.writeFileSync(sessionFile(nodePath), JSON.stringify({ ...stored, issuedAt: stored.expiresAt - 2 * (stored.expiresAt - Date.now()) - 1000 }));
    const client = await clientOf(agent, nodePath, async () => {
      throw new Error('must not ask');
    });
    await client.call('vaults.list', {});
    const fresh = readSession(nodePath)!;
    expect(fresh.token).not.toBe(session.token);
    client.close();
    const raw = (await AgentConnection.connect(agent.socket))!;
    await expect(raw.request('vaults.list', {}, session.token)).rejects.toMatchObject({ code: 'ERR_UNAUTHENTICATED' });
    expect(await raw.request('vaults.list', {}, fresh.token)).toEqual({ vaults: [expect.objectContaining({ name: 'app' })] });
    raw.close();
  });

  it('makes file params absolute before sending (the agent has its own working directory)', async () => {
    const { agent, nodePath } = await agentWithVault();
    const client = await clientOf(agent, nodePath, async () => TEST_PASSWORD);
    const dir = tempDir();
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      await client.call('vaults.exportBundle', { name: 'app', file: 'out.bundle' });
    } finally {
      process.chdir(cwd);
    }
    expect(fs.existsSync(path.join(fs.realpathSync(dir), 'out.bundle'))).toBe(true);
    client.close();
  });
});
