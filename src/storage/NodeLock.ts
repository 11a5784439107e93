import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KeynodeError, fromSystemError } from '../errors.js';
import { NODE_LOCK_POLL_MS, NODE_LOCK_WAIT_MS } from '../constants.js';
import { isProcessAlive } from '../processes.js';

/**
 * One process owns a node at a time. The lock is a symbolic link whose target names the owner
 * (pid, process start time, boot id, host). Creating a symlink is atomic with its content, so
 * a waiter never sees a lock without its owner (a regular file is created empty and written
 * after, and a waiter that read it in between once took the lock away from a live owner).
 * A short target needs no data block, so the lock works on a full disk. A lock left by a
 * killed process is recognised (dead pid, a reused pid with another start time, or another
 * boot) and taken over at once instead of blocking.
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
/** A lock in the old regular-file form is presumed half-written (not stale) for this long. */
const UNREADABLE_GRACE_MS = 5_000;
/** Characters of the boot id and host kept in the link target (short targets live in the inode). */
const BOOT_ID_CHARS = 12;
const HOST_CHARS = 24;

function readBootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replaceAll('-', '').slice(0, BOOT_ID_CHARS);
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

function shortHost(): string {
  return os
    .hostname()
    .replace(/[^A-Za-z0-9.-]/g, '_')
    .slice(0, HOST_CHARS);
}

/** The link target: "pid:startTime:bootId:host". */
function encodeOwner(owner: LockOwner): string {
  return `${owner.pid}:${owner.startTime}:${owner.bootId}:${owner.host}`;
}

function currentOwner(): LockOwner {
  return { pid: process.pid, host: shortHost(), bootId: readBootId(), startTime: readStartTime(process.pid) };
}

function parseOwner(text: string): LockOwner | null {
  const match = /^(\d+):(\d*):([0-9a-f]*):([A-Za-z0-9._-]*)$/.exec(text);
  if (match) return { pid: Number(match[1]), startTime: match[2]!, bootId: match[3]!, host: match[4]! };
  try {
    // The regular-file form written by earlier versions.
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid !== 'number' || typeof value.host !== 'string') return null;
    const bootId = String(value.bootId ?? '')
      .replaceAll('-', '')
      .slice(0, BOOT_ID_CHARS);
    return { pid: value.pid, host: value.host.replace(/[^A-Za-z0-9.-]/g, '_').slice(0, HOST_CHARS), bootId, startTime: String(value.startTime ?? '') };
  } catch {
    return null;
  }
}

/** True when the owner is certainly gone. An owner on another host is never presumed dead. */
function isStale(owner: LockOwner): boolean {
  if (owner.host !== shortHost()) return false;
  if (owner.bootId && owner.bootId !== readBootId()) return true;
  if (!isProcessAlive(owner.pid)) return true;
  return owner.startTime !== '' && owner.startTime !== readStartTime(owner.pid);
}

function tryCreate(file: string, content: string): boolean {
  try {
    fs.symlinkSync(content, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw fromSystemError(error, `creating lock ${file}`);
  }
}

interface LockState {
  text: string;
  /** Set for the old regular-file form, whose content may still be on its way. */
  mtimeMs?: number;
}

/** The lock's owner text, or null if there is no lock. */
function readLock(file: string): LockState | null {
  try {
    return { text: fs.readlinkSync(file) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code !== 'EINVAL') throw fromSystemError(error, `reading lock ${file}`);
  }
  try {
    // Not a link: a lock file written by an earlier version.
    return { text: fs.readFileSync(file, 'utf8'), mtimeMs: fs.statSync(file).mtimeMs };
  } catch {
    return null;
  }
}

function lockIsStale(state: LockState): boolean {
  const owner = parseOwner(state.text);
  if (owner) return isStale(owner);
  // Unreadable: a link is never half-made, so it is not ours to judge only if it is a young file.
  return state.mtimeMs === undefined || Date.now() - state.mtimeMs > UNREADABLE_GRACE_MS;
}

/**
 * Remove a stale lock, serialised through a takeover link so two waiters cannot both remove
 * (one of them a fresh lock another waiter just made). False if another waiter is at it.
 */
function removeStaleLock(file: string, staleText: string): boolean {
  const takeover = file + TAKEOVER_SUFFIX;
  if (!tryCreate(takeover, encodeOwner(currentOwner()))) {
    try {
      const state = readLock(takeover);
      const owner = state && parseOwner(state.text);
      const age = Date.now() - fs.lstatSync(takeover).mtimeMs;
      if ((owner && isStale(owner)) || age > STALE_TAKEOVER_MS) fs.rmSync(takeover, { force: true });
    } catch {
      /* it went away: retry later */
    }
    return false;
  }
  try {
    if (readLock(file)?.text === staleText) fs.rmSync(file, { force: true });
  } finally {
    fs.rmSync(takeover, { force: true });
  }
  return true;
}

export class NodeLock {
  private released = false;

  private constructor(
    readonly file: string,
    private readonly content: string,
  ) {}

  static async acquire(nodeDir: string, options: { waitMs?: number } = {}): Promise<NodeLock> {
    const file = path.join(nodeDir, LOCK_FILE);
    const content = encodeOwner(currentOwner());
    const deadline = Date.now() + (options.waitMs ?? NODE_LOCK_WAIT_MS);
    for (;;) {
      if (tryCreate(file, content)) return new NodeLock(file, content);
      const state = readLock(file);
      if (state === null) continue; // released between our attempt and the read
      const owner = parseOwner(state.text);
      if (lockIsStale(state) && removeStaleLock(file, state.text)) continue;
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
    if (readLock(this.file)?.text === this.content) fs.rmSync(this.file, { force: true });
  }
}
