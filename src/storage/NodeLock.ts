import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KeynodeError, fromSystemError } from '../errors.js';
import { NODE_LOCK_POLL_MS, NODE_LOCK_WAIT_MS } from '../constants.js';
import { FILE_MODE } from './files.js';

/**
 * One process owns a node at a time. The lock is a file created with O_EXCL holding the
 * owner's pid, host, boot id and process start time, so a lock left by a killed process is
 * recognised (dead pid, or a reused pid with another start time, or another boot) and taken
 * over at once instead of blocking.
 */
interface LockOwner {
  pid: number;
  host: string;
  bootId: string;
  startTime: string;
}

export const LOCK_FILE = 'LOCK';
const TAKEOVER_SUFFIX = '.takeover';
const STALE_TAKEOVER_MS = 10_000;

function readBootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

function readStartTime(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function currentOwner(): LockOwner {
  return { pid: process.pid, host: os.hostname(), bootId: readBootId(), startTime: readStartTime(process.pid) };
}

function parseOwner(text: string): LockOwner | null {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid !== 'number' || typeof value.host !== 'string') return null;
    return { pid: value.pid, host: value.host, bootId: String(value.bootId ?? ''), startTime: String(value.startTime ?? '') };
  } catch {
    return null;
  }
}

/** True when the owner is certainly gone. An owner on another host is never presumed dead. */
function isStale(owner: LockOwner | null): boolean {
  if (owner === null) return true; // unreadable: a crash between create and write
  if (owner.host !== os.hostname()) return false;
  if (owner.bootId && owner.bootId !== readBootId()) return true;
  if (!isAlive(owner.pid)) return true;
  return owner.startTime !== '' && owner.startTime !== readStartTime(owner.pid);
}

function tryCreate(file: string, content: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', FILE_MODE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw fromSystemError(error, `creating lock ${file}`);
  }
  try {
    fs.writeSync(fd, content);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** Remove a stale lock, serialised through a takeover file so two waiters cannot both win. */
function removeStaleLock(file: string, staleText: string | null): void {
  const takeover = file + TAKEOVER_SUFFIX;
  if (!tryCreate(takeover, JSON.stringify(currentOwner()))) {
    try {
      const age = Date.now() - fs.statSync(takeover).mtimeMs;
      if (age > STALE_TAKEOVER_MS) fs.rmSync(takeover, { force: true });
    } catch {
      /* it went away: retry later */
    }
    return;
  }
  try {
    if (readText(file) === staleText) fs.rmSync(file, { force: true });
  } finally {
    fs.rmSync(takeover, { force: true });
  }
}

export class NodeLock {
  private released = false;

  private constructor(
    readonly file: string,
    private readonly content: string,
  ) {}

  static async acquire(nodeDir: string, options: { waitMs?: number } = {}): Promise<NodeLock> {
    const file = path.join(nodeDir, LOCK_FILE);
    const content = JSON.stringify(currentOwner());
    const deadline = Date.now() + (options.waitMs ?? NODE_LOCK_WAIT_MS);
    for (;;) {
      if (tryCreate(file, content)) return new NodeLock(file, content);
      const text = readText(file);
      const owner = text === null ? null : parseOwner(text);
      if (text !== null && isStale(owner)) {
        removeStaleLock(file, text);
        continue;
      }
      if (Date.now() >= deadline) {
        const who = owner ? `process ${owner.pid} on ${owner.host}` : 'another process';
        throw new KeynodeError('ERR_NODE_LOCKED', `node ${nodeDir} is in use by ${who}; stop it (or its agent) and retry`, {
          nodeDir,
          pid: owner?.pid,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, NODE_LOCK_POLL_MS));
    }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    if (readText(this.file) === this.content) fs.rmSync(this.file, { force: true });
  }
}
