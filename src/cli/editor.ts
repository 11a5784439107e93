import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { KeynodeError } from '../errors.js';

/** Directories backed by memory, where an editor's copy of a secret never reaches a disk. */
function memoryBackedDir(): string {
  const candidates = [process.env.XDG_RUNTIME_DIR, '/dev/shm'].filter((d): d is string => Boolean(d));
  for (const dir of candidates) {
    try {
      fs.accessSync(dir, fs.constants.W_OK);
      return dir;
    } catch {
      /* next */
    }
  }
  throw new KeynodeError('ERR_NOT_SUPPORTED', 'no memory-backed directory (XDG_RUNTIME_DIR or /dev/shm) for the editor; use stdin or --file');
}

/**
 * Let the person edit a secret in $VISUAL / $EDITOR. The value lives in a 0600 file inside a
 * 0700 directory on tmpfs only while the editor runs; it is overwritten and removed after.
 */
export function editInEditor(initial: Uint8Array | undefined): Buffer {
  const editor = process.env.VISUAL || process.env.EDITOR || 'vi';
  const dir = fs.mkdtempSync(path.join(memoryBackedDir(), 'keynode-'));
  const file = path.join(dir, 'secret');
  try {
    fs.chmodSync(dir, 0o700);
    fs.writeFileSync(file, initial ?? new Uint8Array(0), { mode: 0o600 });
    const result = spawnSync('/bin/sh', ['-c', `${editor} "$1"`, 'keynode-editor', file], { stdio: 'inherit' });
    if (result.status !== 0) throw new KeynodeError('ERR_CANCELLED', `the editor exited with status ${String(result.status)}; nothing was saved`);
    return fs.readFileSync(file);
  } finally {
    try {
      const size = fs.statSync(file).size;
      fs.writeFileSync(file, Buffer.alloc(size));
    } catch {
      /* already gone */
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
