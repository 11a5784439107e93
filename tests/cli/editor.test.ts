import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseEditDir, fileSystemTypeOf, sweepStaleEditDirs } from '../../src/cli/editor.js';
import { isKeynodeError } from '../../src/errors.js';
import { tempDir } from '../helpers/index.js';

/** /proc/self/mountinfo lines: id parent major:minor root mount-point options ... - type source super-options */
const mountinfo = (mounts: Array<[string, string]>) =>
  mounts.map(([point, type], i) => `${i + 20} 1 0:${i} / ${point} rw,nosuid shared:${i} - ${type} ${type} rw`).join('\n');

/** A pid no process has now. */
function deadPid(): number {
  for (let pid = 4_000_000; ; pid--) {
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
}

describe('editor temp directory', () => {
  it('reads the file system type of the deepest mount covering a path', () => {
    const text = mountinfo([
      ['/', 'ext4'],
      ['/run', 'tmpfs'],
      ['/run/user/1000', 'tmpfs'],
      ['/run/user/1000/doc', 'fuse.portal'],
      ['/mnt/with\\040space', 'ramfs'],
      ['/tmp', 'tmpfs'],
      ['/tmp', 'ext4'], // mounted on top: the later one is what a path there reaches
    ]);
    expect(fileSystemTypeOf('/run/user/1000/keynode-edit', text)).toBe('tmpfs');
    expect(fileSystemTypeOf('/run/user/1000/doc/x', text)).toBe('fuse.portal');
    expect(fileSystemTypeOf('/running', text)).toBe('ext4'); // a name prefix is not a parent
    expect(fileSystemTypeOf('/mnt/with space/a', text)).toBe('ramfs');
    expect(fileSystemTypeOf('/tmp/x', text)).toBe('ext4');
    expect(fileSystemTypeOf('/x', '')).toBeNull();
  });

  it('takes a directory only if it is memory-backed; refuses with a clear error otherwise, unless allowed on disk', () => {
    const onDisk = tempDir();
    const memory = tempDir();
    const mounts = mountinfo([
      ['/', 'ext4'],
      [memory, 'tmpfs'],
    ]);
    expect(chooseEditDir({ candidates: [onDisk, memory], mountinfo: mounts, allowDisk: false })).toBe(fs.realpathSync(memory));
    const refused = (() => {
      try {
        chooseEditDir({ candidates: [onDisk, '/nonexistent/dir'], mountinfo: mounts, allowDisk: false });
      } catch (error) {
        return error;
      }
    })();
    expect(isKeynodeError(refused, 'ERR_NOT_SUPPORTED')).toBe(true);
    expect((refused as Error).message).toContain('KEYNODE_EDIT_ALLOW_DISK=1');
    // Without /proc (not Linux) nothing is shown to be memory-backed.
    expect(() => chooseEditDir({ candidates: [memory], mountinfo: null, allowDisk: false })).toThrow(/no memory-backed/);
    expect(chooseEditDir({ candidates: ['/nonexistent/dir', onDisk], mountinfo: mounts, allowDisk: true })).toBe(fs.realpathSync(onDisk));
  });

  it('sweeps edit directories of processes that are gone, and only those', () => {
    const parent = tempDir();
    const stale = path.join(parent, `keynode-edit-${deadPid()}-abc123`);
    const live = path.join(parent, `keynode-edit-${process.pid}-def456`);
    const other = path.join(parent, 'keynode-editor-notes');
    for (const dir of [stale, live, other]) {
      fs.mkdirSync(dir, { mode: 0o700 });
      fs.writeFileSync(path.join(dir, 'secret'), 'left behind', { mode: 0o600 });
    }
    fs.mkdirSync(path.join(stale, 'sub'));
    fs.writeFileSync(path.join(stale, 'sub', '.secret.swp'), 'swap');
    expect(sweepStaleEditDirs([parent, '/nonexistent/dir'])).toEqual([stale]);
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.readFileSync(path.join(live, 'secret'), 'utf8')).toBe('left behind');
    expect(fs.existsSync(other)).toBe(true);
  });
});
