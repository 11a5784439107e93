import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SECRET_VALUE_MAX_BYTES } from '../constants.js';
import { KeynodeError, fromSystemError } from '../errors.js';
import { childEnv } from './context.js';
import { isProcessAlive } from '../processes.js';

/**
 * `secrets set --edit`: the value lives in a 0600 file inside a 0700 directory on a memory-backed
 * file system (tmpfs or ramfs, checked, not assumed) only while the editor runs, and is
 * overwritten and removed on every way out: normal return, error, SIGINT/SIGTERM/SIGHUP/SIGQUIT
 * (forwarded to the editor first), and, for a keynode killed outright, by the next `--edit`,
 * which sweeps directories whose process is gone.
 */
const EDIT_DIR_PREFIX = 'keynode-edit-';
const MEMORY_FS_TYPES = new Set(['tmpfs', 'ramfs']);
/** Opt-in to a directory that may be on disk, where no memory-backed one exists (e.g. macOS). */
export const ALLOW_DISK_ENV = 'KEYNODE_EDIT_ALLOW_DISK';
/** How long an editor that was sent a signal may take to exit before it is killed. */
const EDITOR_STOP_GRACE_MS = 5_000;
const EXIT_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/** `\040`-style escapes in /proc/self/mountinfo paths. */
function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * The file system type of the mount that holds `file` (an absolute, resolved path), from the
 * text of /proc/self/mountinfo; null when no mount covers it. The deepest mount point wins, and
 * of two on the same point the later one (mounted on top).
 */
export function fileSystemTypeOf(file: string, mountinfo: string): string | null {
  let best: { point: string; type: string } | null = null;
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (fields.length < 7 || separator < 0 || separator + 1 >= fields.length) continue;
    const point = unescapeMountPath(fields[4]!);
    const covers = point === '/' || file === point || file.startsWith(`${point}/`);
    if (covers && (!best || point.length >= best.point.length)) best = { point, type: fields[separator + 1]! };
  }
  return best?.type ?? null;
}

function readMountinfo(): string | null {
  try {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return null; // not Linux: nothing can be shown to be memory-backed
  }
}

/** A directory we may create the edit directory in: exists, is a directory, is writable. */
function usableDir(dir: string): string | null {
  try {
    const real = fs.realpathSync(dir);
    if (!fs.statSync(real).isDirectory()) return null;
    fs.accessSync(real, fs.constants.W_OK | fs.constants.X_OK);
    return real;
  } catch {
    return null;
  }
}

/**
 * The first candidate on a memory-backed file system; with `allowDisk`, else the first usable
 * one at all. Refuses (ERR_NOT_SUPPORTED) rather than let a secret reach a disk unasked.
 */
export function chooseEditDir(options: { candidates: string[]; mountinfo: string | null; allowDisk: boolean }): string {
  for (const candidate of options.candidates) {
    const dir = usableDir(candidate);
    const type = dir && options.mountinfo !== null ? fileSystemTypeOf(dir, options.mountinfo) : null;
    if (dir && type && MEMORY_FS_TYPES.has(type)) return dir;
  }
  if (options.allowDisk) {
    for (const candidate of options.candidates) {
      const dir = usableDir(candidate);
      if (dir) return dir;
    }
  }
  throw new KeynodeError(
    'ERR_NOT_SUPPORTED',
    `no memory-backed (tmpfs) directory for the editor's copy (tried ${options.candidates.join(', ')}); use stdin or --file, or set ${ALLOW_DISK_ENV}=1 to accept one on disk`,
  );
}

function candidateDirs(allowDisk: boolean): string[] {
  const dirs = [process.env.XDG_RUNTIME_DIR, '/dev/shm', allowDisk ? os.tmpdir() : undefined];
  return [...new Set(dirs.filter((d): d is string => Boolean(d) && path.isAbsolute(d!)))];
}

/** Overwrite every regular file under `dir` with zeros (never following links), then remove it. */
function wipeDir(dir: string): void {
  const overwrite = (current: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(current, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) overwrite(full);
      else if (entry.isFile()) {
        try {
          const fd = fs.openSync(full, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW);
          try {
            fs.writeSync(fd, Buffer.alloc(fs.fstatSync(fd).size));
          } finally {
            fs.closeSync(fd);
          }
        } catch {
          /* removed below either way */
        }
      }
    }
  };
  overwrite(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Wipe edit directories (ours, by uid) whose keynode process no longer exists. */
export function sweepStaleEditDirs(parents: string[]): string[] {
  const swept: string[] = [];
  for (const parent of parents) {
    let names: string[];
    try {
      names = fs.readdirSync(parent);
    } catch {
      continue;
    }
    for (const name of names) {
      const match = new RegExp(`^${EDIT_DIR_PREFIX}(\\d+)-`).exec(name);
      if (!match) continue;
      const full = path.join(parent, name);
      try {
        const stat = fs.lstatSync(full);
        if (!stat.isDirectory() || stat.uid !== process.getuid?.()) continue;
      } catch {
        continue;
      }
      if (isProcessAlive(Number(match[1]))) continue;
      wipeDir(full);
      swept.push(full);
    }
  }
  return swept;
}

/** Leave the way the signal asks, once the copy is gone. */
function exitForSignal(signal: NodeJS.Signals): never {
  const number = os.constants.signals[signal];
  // SIGQUIT's default action dumps core, and this process's memory holds secrets.
  if (signal !== 'SIGQUIT' && process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  process.exit(128 + number);
}

/**
 * Run the editor on `file`, resolving to its exit status. A terminating signal sent to keynode
 * is forwarded to the editor (killed after a grace period if it ignores it); once the editor is
 * gone, `cleanUp` runs and keynode exits as that signal asks.
 */
function runEditor(editor: string, file: string, cleanUp: () => void): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const state: { child?: ChildProcess; received?: NodeJS.Signals } = {};
    const onSignal = (signal: NodeJS.Signals) => {
      if (state.received) return;
      state.received = signal;
      state.child?.kill(signal);
      setTimeout(() => state.child?.kill('SIGKILL'), EDITOR_STOP_GRACE_MS).unref();
    };
    for (const signal of EXIT_SIGNALS) process.on(signal, onSignal);
    const stopListening = () => {
      for (const signal of EXIT_SIGNALS) process.off(signal, onSignal);
    };
    try {
      // `exec` so that the process we signal is the editor itself, not a shell around it.
      state.child = spawn('/bin/sh', ['-c', `exec ${editor} "$1"`, 'keynode-editor', file], { stdio: 'inherit', env: childEnv() });
    } catch (error) {
      stopListening();
      reject(new KeynodeError('ERR_IO', `cannot start the editor: ${(error as NodeJS.ErrnoException).code ?? String(error)}`));
      return;
    }
    state.child.once('error', (error: NodeJS.ErrnoException) => {
      stopListening();
      reject(new KeynodeError('ERR_IO', `cannot start the editor: ${error.code ?? error.message}`));
    });
    state.child.once('exit', (code, signal) => {
      stopListening();
      if (state.received) {
        cleanUp();
        exitForSignal(state.received);
      }
      resolve({ code, signal });
    });
  });
}

/** Let the person edit a secret in $VISUAL / $EDITOR (see the top of this file). */
export async function editInEditor(initial: Uint8Array | undefined): Promise<Buffer> {
  const editor = process.env.VISUAL || process.env.EDITOR || 'vi';
  const allowDisk = process.env[ALLOW_DISK_ENV] === '1';
  sweepStaleEditDirs([...new Set([...candidateDirs(allowDisk), os.tmpdir()])]);
  const parent = chooseEditDir({ candidates: candidateDirs(allowDisk), mountinfo: readMountinfo(), allowDisk });
  const dir = fs.mkdtempSync(path.join(parent, `${EDIT_DIR_PREFIX}${process.pid}-`));
  const file = path.join(dir, 'secret');
  let wiped = false;
  const wipe = () => {
    if (wiped) return;
    wiped = true;
    wipeDir(dir);
  };
  process.on('exit', wipe); // a path that skips `finally` (process.exit elsewhere) still wipes
  try {
    fs.chmodSync(dir, 0o700);
    fs.writeFileSync(file, initial ?? new Uint8Array(0), { mode: 0o600, flag: 'wx' });
    const { code, signal } = await runEditor(editor, file, wipe);
    if (code !== 0) {
      throw new KeynodeError('ERR_CANCELLED', `the editor ${signal ? `was killed by ${signal}` : `exited with status ${String(code)}`}; nothing was saved`);
    }
    try {
      // Not through a link: whatever the file became, only a regular file in our directory counts.
      // Non-blocking open: a FIFO left in its place must not hang us; only a regular file of
      // at most the value limit is read.
      const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      try {
        const stat = fs.fstatSync(fd);
        if (!stat.isFile()) throw new KeynodeError('ERR_CANCELLED', 'the editor left something other than a file; nothing was saved');
        if (stat.size > SECRET_VALUE_MAX_BYTES) {
          throw new KeynodeError('ERR_INVALID_ARGUMENT', `values are limited to ${SECRET_VALUE_MAX_BYTES / (1024 * 1024)} MiB; nothing was saved`);
        }
        return fs.readFileSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new KeynodeError('ERR_CANCELLED', 'the editor removed the file; nothing was saved');
      if (code === 'ELOOP') throw new KeynodeError('ERR_CANCELLED', 'the editor left a link instead of the file; nothing was saved');
      throw fromSystemError(error, "reading the editor's file");
    }
  } finally {
    wipe();
    process.off('exit', wipe);
  }
}
