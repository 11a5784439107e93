import { describe, expect, it } from 'vitest';
import { NodeLifecycle, ServiceGroup, type Service } from '../../src/node/lifecycle.js';
import { createTestNode, lockPresent, TEST_PASSWORD } from '../helpers/index.js';

/** A service that records what happened to it, in one shared log. */
function recorder(name: string, log: string[], fail: { start?: boolean; stop?: boolean } = {}): Service & { running: boolean } {
  const service = {
    name,
    running: false,
    start() {
      if (fail.start) throw new Error(`${name} cannot start`);
      service.running = true;
      log.push(`start ${name}`);
    },
    async stop() {
      service.running = false;
      log.push(`stop ${name}`);
      if (fail.stop) throw new Error(`${name} cannot stop`);
    },
  };
  return service;
}

describe('ServiceGroup', () => {
  it('starts in order and stops in reverse, once per cycle', async () => {
    const log: string[] = [];
    const group = new ServiceGroup([recorder('a', log), recorder('b', log), recorder('c', log)]);
    await group.start();
    await group.start(); // already started: nothing twice
    await group.stop();
    await group.stop(); // already stopped: nothing twice
    expect(log).toEqual(['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
  });

  it('stops what it started when a later service fails to start', async () => {
    const log: string[] = [];
    const group = new ServiceGroup([recorder('a', log), recorder('b', log), recorder('c', log, { start: true })]);
    await expect(group.start()).rejects.toThrow('c cannot start');
    expect(log).toEqual(['start a', 'start b', 'stop b', 'stop a']);
    expect(group.started).toBe(false);
  });

  it('stops every service even when one fails to stop, and reports the failure', async () => {
    const log: string[] = [];
    const group = new ServiceGroup([recorder('a', log), recorder('b', log, { stop: true }), recorder('c', log)]);
    await group.start();
    await expect(group.stop()).rejects.toThrow('b cannot stop');
    expect(log.slice(3)).toEqual(['stop c', 'stop b', 'stop a']);
  });
});

describe('NodeLifecycle', () => {
  it('locks and unlocks many times in one process: services follow, keys go, the file lock stays', async () => {
    const { node, nodePath } = await createTestNode();
    node.close();
    const log: string[] = [];
    const service = recorder('svc', log);
    const lifecycle = await NodeLifecycle.open({ nodePath, password: TEST_PASSWORD, services: () => [service] });
    const vault = await lifecycle.node!.vaults.createVault('v');
    await vault.writeSecret('k', Buffer.from('one'));
    for (let i = 0; i < 20; i++) {
      await lifecycle.lock();
      expect(lifecycle.locked).toBe(true);
      expect(service.running).toBe(false);
      expect(lockPresent(nodePath)).toBe(true); // nobody else may open it meanwhile
      const unlocked = await lifecycle.unlock(Buffer.from(TEST_PASSWORD));
      expect(service.running).toBe(true);
      expect((await (await unlocked.vaults.openVault('v')).readSecret('k')).toString()).toBe('one');
    }
    expect(log.filter((line) => line === 'start svc')).toHaveLength(21);
    expect(log.filter((line) => line === 'stop svc')).toHaveLength(20);
    await lifecycle.close();
    await lifecycle.close(); // idempotent
    expect(service.running).toBe(false);
    expect(lockPresent(nodePath)).toBe(false);
  });

  it('refuses a wrong password without unlocking, and only checks it when already unlocked', async () => {
    const { node, nodePath } = await createTestNode();
    node.close();
    const lifecycle = await NodeLifecycle.open({ nodePath, password: TEST_PASSWORD });
    const open = lifecycle.node;
    await expect(lifecycle.unlock('wrong')).rejects.toMatchObject({ code: 'ERR_WRONG_PASSWORD' });
    expect(lifecycle.node).toBe(open); // still the same open node
    await lifecycle.lock();
    await expect(lifecycle.unlock('wrong')).rejects.toMatchObject({ code: 'ERR_WRONG_PASSWORD' });
    expect(lifecycle.locked).toBe(true);
    const password = Buffer.from(TEST_PASSWORD);
    await lifecycle.unlock(password);
    expect(password.every((byte) => byte === 0)).toBe(true); // the caller's bytes are zeroed
    await lifecycle.close();
  });

  it('does not unlock when a service cannot start, and releases nothing it should keep', async () => {
    const { node, nodePath } = await createTestNode();
    node.close();
    let failNext = false;
    const lifecycle = await NodeLifecycle.open({
      nodePath,
      password: TEST_PASSWORD,
      services: () => [
        {
          name: 'flaky',
          start: () => {
            if (failNext) throw new Error('no');
          },
          stop: () => {},
        },
      ],
    });
    await lifecycle.lock();
    failNext = true;
    await expect(lifecycle.unlock(TEST_PASSWORD)).rejects.toThrow('no');
    expect(lifecycle.locked).toBe(true);
    expect(lockPresent(nodePath)).toBe(true);
    failNext = false;
    await lifecycle.unlock(TEST_PASSWORD);
    expect(lifecycle.locked).toBe(false);
    await lifecycle.close();
  });

  it('gives ERR_NODE_NOT_FOUND for a directory without a node', async () => {
    const { nodePath } = await createTestNode();
    await expect(NodeLifecycle.open({ nodePath: `${nodePath}-absent`, password: TEST_PASSWORD })).rejects.toMatchObject({ code: 'ERR_NODE_NOT_FOUND' });
  });
});
