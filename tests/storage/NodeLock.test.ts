import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCK_FILE, NodeLock } from '../../src/storage/NodeLock.js';
import { isKeynodeError } from '../../src/errors.js';
import { tempDir } from '../helpers/index.js';

describe('NodeLock', () => {
  it('lets one holder in; a second waits, then fails with ERR_NODE_LOCKED', async () => {
    const dir = tempDir();
    const first = await NodeLock.acquire(dir);
    const started = Date.now();
    const second = await NodeLock.acquire(dir, { waitMs: 300 }).catch((error: unknown) => error);
    expect(isKeynodeError(second, 'ERR_NODE_LOCKED')).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    first.release();
    const third = await NodeLock.acquire(dir, { waitMs: 0 });
    third.release();
  });

  it('hands the lock to a waiter as soon as it is released', async () => {
    const dir = tempDir();
    const first = await NodeLock.acquire(dir);
    setTimeout(() => first.release(), 100);
    const second = await NodeLock.acquire(dir, { waitMs: 5000 });
    second.release();
  });

  it('takes over at once a lock left by a killed process', async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    await new Promise((resolve) => child.once('spawn', resolve));
    // Write the lock as that process would have, then kill it.
    const starttime = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const start = starttime.slice(starttime.lastIndexOf(')') + 2).split(' ')[19];
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: child.pid, host: (await import('node:os')).hostname(), bootId, startTime: start }));
    const blocked = await NodeLock.acquire(dir, { waitMs: 100 }).catch((error: unknown) => error);
    expect(isKeynodeError(blocked, 'ERR_NODE_LOCKED')).toBe(true);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const started = Date.now();
    const lock = await NodeLock.acquire(dir, { waitMs: 0 });
    expect(Date.now() - started).toBeLessThan(1000);
    lock.release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
  });

  it('treats an old-style empty lock file as stale only once it is old, never while it may be being written', async () => {
    const dir = tempDir();
    const file = path.join(dir, LOCK_FILE);
    fs.writeFileSync(file, '');
    const young = await NodeLock.acquire(dir, { waitMs: 0 }).catch((error: unknown) => error);
    expect(isKeynodeError(young, 'ERR_NODE_LOCKED')).toBe(true);
    const past = new Date(Date.now() - 60_000);
    fs.utimesSync(file, past, past);
    const lock = await NodeLock.acquire(dir, { waitMs: 0 });
    expect(fs.lstatSync(file).isSymbolicLink()).toBe(true);
    lock.release();
    expect(fs.existsSync(file)).toBe(false);
  });

  it('never lets two of many racing processes hold the lock at once', async () => {
    const dir = tempDir();
    const counter = path.join(dir, 'inside');
    // Each child takes the lock, checks nobody else is inside, stays a moment, leaves.
    const script = `
      const fs = require('node:fs');
      import(${JSON.stringify(path.resolve(import.meta.dirname, '../../dist/storage/NodeLock.js'))}).then(async ({ NodeLock }) => {
        for (let i = 0; i < 10; i++) {
          const lock = await NodeLock.acquire(process.argv[1], { waitMs: 30000 });
          try { fs.mkdirSync(process.argv[2]); } catch { console.log('OVERLAP'); process.exit(3); }
          await new Promise((r) => setTimeout(r, 2));
          fs.rmdirSync(process.argv[2]);
          lock.release();
        }
      });`;
    const children = Array.from({ length: 8 }, () => spawn(process.execPath, ['-e', script, dir, counter], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const codes = await Promise.all(children.map((child) => new Promise<number | null>((resolve) => child.once('exit', resolve))));
    expect(codes).toEqual(Array(8).fill(0));
  });
});
