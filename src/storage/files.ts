import fs from 'node:fs';
import path from 'node:path';
import { fromSystemError } from '../errors.js';

export const FILE_MODE = 0o600;
let tempCounter = 0;
export const DIR_MODE = 0o700;

/** Create a directory (and parents) readable only by the owner. */
export function ensurePrivateDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    fs.chmodSync(dir, DIR_MODE);
  } catch (error) {
    throw fromSystemError(error, `creating directory ${dir}`);
  }
}

/** fsync a directory so a rename or a new file in it survives a crash. */
export function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Write all of `data` at `position`: write(2) may write less than asked (a nearly full disk
 * does), so loop until done; a write that makes no progress is an error, never a silent gap.
 */
export function writeAll(fd: number, data: Uint8Array, position: number): void {
  let written = 0;
  while (written < data.length) {
    const n = fs.writeSync(fd, data, written, data.length - written, position + written);
    if (n <= 0) throw Object.assign(new Error('write made no progress'), { code: 'ENOSPC' });
    written += n;
  }
}

/**
 * Replace a file atomically and durably: write a temporary sibling, fsync it, check its size,
 * rename it over the target, fsync the directory. A crash or a full disk leaves either the old
 * or the new file, never a mix or a truncated one.
 */
export function writeFileAtomic(file: string, data: Uint8Array, mode = FILE_MODE): void {
  const dir = path.dirname(file);
  // Unique per process and call; created with O_EXCL, so a clash fails instead of sharing a file.
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.${tempCounter++}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(temp, 'wx', mode);
    writeAll(fd, data, 0);
    fs.fsyncSync(fd);
    if (fs.fstatSync(fd).size !== data.length) throw Object.assign(new Error('the file is shorter than written'), { code: 'EIO' });
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temp, file);
    syncDir(dir);
  } catch (error) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw fromSystemError(error, `writing ${file}`);
  }
}
