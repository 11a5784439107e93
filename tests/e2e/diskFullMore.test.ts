import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliSandbox } from '../helpers/cli.js';

/**
 * The CLI on a real, tiny file system that fills up (issue 6): a delete that cannot compact,
 * plaintext outputs onto a full disk, reads on a full disk, a write that fails. Skipped where
 * this machine does not let us mount one (root in CI here).
 */
const mounted: string[] = [];
afterAll(() => {
  for (const dir of mounted) {
    spawnSync('umount', [dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function mountTiny(sizeKib: number): string | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keynode-tiny-'));
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKib}k,mode=0700`, 'tmpfs', dir]);
  if (result.status !== 0) {
    fs.rmdirSync(dir);
    return null;
  }
  mounted.push(dir);
  return dir;
}

const canMount = (() => {
  const probe = mountTiny(64);
  return probe !== null;
})();

function freeBytes(dir: string): number {
  const space = fs.statfsSync(dir);
  return space.bavail * space.bsize;
}

/** Fill the file system with `file` until it has `leaveBytes` free (0: until ENOSPC). */
function fill(file: string, leaveBytes = 0): void {
  const fd = fs.openSync(file, 'a');
  const chunk = Buffer.alloc(64 * 1024, 0x55);
  try {
    for (;;) {
      const room = freeBytes(path.dirname(file)) - leaveBytes;
      if (leaveBytes > 0 && room <= 0) return;
      fs.writeSync(fd, chunk, 0, leaveBytes > 0 ? Math.min(chunk.length, room) : chunk.length);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    fs.closeSync(fd);
  }
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

const INIT = ['init', '--kdf-memory', '8192', '--kdf-iterations', '1'];

describe.skipIf(!canMount)('disk full, more', () => {
  it('vaults delete without room to compact: succeeds and says so, other vaults intact; with room again the next open purges', () => {
    const tiny = mountTiny(4096)!;
    const cli = cliSandbox();
    const env = { KEYNODE_PATH: path.join(tiny, 'node') };
    cli.ok(INIT, { env });
    cli.ok(['vaults', 'create', 'keep'], { env });
    cli.ok(['vaults', 'create', 'gone'], { env });
    const kept = crypto.randomBytes(300 * 1024);
    cli.ok(['secrets', 'set', 'keep:bulk'], { input: kept, env });
    cli.ok(['secrets', 'set', 'gone:bulk'], { input: crypto.randomBytes(300 * 1024), env });
    // Room for the deleting batch, not for a compaction (live data plus 1 MiB spare).
    const filler = path.join(tiny, 'filler');
    fill(filler, 400 * 1024);
    const sizeBefore = fs.statSync(path.join(tiny, 'node', 'store.log')).size;
    const deleted = cli.run(['vaults', 'delete', 'gone', '--yes'], { env });
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.out).toContain('stay in the store file');
    expect(cli.ok(['vaults', 'list', '--json'], { env }).json()).toMatchObject({ vaults: [{ name: 'keep' }] });
    expect(cli.ok(['secrets', 'get', 'keep:bulk'], { env }).stdout.equals(kept)).toBe(true);
    expect(fs.statSync(path.join(tiny, 'node', 'store.log')).size).toBeGreaterThanOrEqual(sizeBefore);
    // Room again: the next command that opens the node finishes the purge.
    fs.rmSync(filler);
    cli.ok(['status'], { env });
    expect(fs.statSync(path.join(tiny, 'node', 'store.log')).size).toBeLessThan(sizeBefore - 250 * 1024);
    expect(cli.ok(['secrets', 'get', 'keep:bulk'], { env }).stdout.equals(kept)).toBe(true);
    expect(cli.ok(['check', '--json'], { env }).json()).toMatchObject({ ok: true, orphans: 0 });
    expect(fs.readdirSync(path.join(tiny, 'node')).sort()).toEqual(['keynode.key', 'store.log', 'store.mark']);
  });

  it('plaintext outputs onto a full disk fail with ERR_NO_SPACE (exit 8) and leave no file behind', () => {
    const tiny = mountTiny(512)!;
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    cli.ok(['secrets', 'set', 'v:token'], { input: 'x'.repeat(6000) });
    const template = path.join(cli.root, 'template');
    fs.writeFileSync(template, 'TOKEN={{ v:token }}\n');
    fill(path.join(tiny, 'filler'));
    const attempts = {
      inject: ['secrets', 'inject', '-i', template, '-o', path.join(tiny, 'out.env')],
      json: ['vaults', 'export', 'v', '--format', 'json', '-o', path.join(tiny, 'out.json'), '--yes'],
      bundle: ['vaults', 'export', 'v', '--git-bundle', path.join(tiny, 'v.bundle'), '--yes'],
    };
    for (const [what, args] of Object.entries(attempts)) {
      const result = cli.run(args);
      expect(result.code, `${what}: ${result.stderr}`).toBe(8);
      expect(result.stderr).toContain('ERR_NO_SPACE');
      expect(result.stderr).not.toContain('x'.repeat(20));
      expect(fs.readdirSync(tiny), what).toEqual(['filler']);
    }
  });

  it('init that runs out of room before the key file leaves nothing that blocks a retry (its phrase was never shown)', () => {
    const tiny = mountTiny(256)!;
    const cli = cliSandbox();
    const env = { KEYNODE_PATH: path.join(tiny, 'node') };
    // Room for the store and its mark (a page each on tmpfs), not for the key file.
    const filler = path.join(tiny, 'filler');
    fill(filler, 2 * 4096);
    const failed = cli.run(INIT, { env });
    expect(failed.code, failed.stderr).toBe(8);
    expect(failed.stderr).toContain('ERR_NO_SPACE');
    expect(failed.out, 'no recovery phrase was shown').toBe('');
    fs.rmSync(filler);
    const retried = cli.run(INIT, { env });
    expect(retried.code, retried.stderr).toBe(0);
  });

  it('on a completely full disk: reads, status and check work and leave no lock; a write fails with exit 8 and truly changes nothing', () => {
    const tiny = mountTiny(1024)!;
    const cli = cliSandbox();
    const nodePath = path.join(tiny, 'node');
    const env = { KEYNODE_PATH: nodePath };
    cli.ok(INIT, { env });
    cli.ok(['vaults', 'create', 'v'], { env });
    cli.ok(['secrets', 'set', 'v:a'], { input: 'first', env });
    cli.ok(['secrets', 'set', 'v:a'], { input: 'second', env });
    fill(path.join(tiny, 'filler'));
    expect(freeBytes(tiny)).toBe(0);
    const files = () => Object.fromEntries(fs.readdirSync(nodePath).map((name) => [name, sha256(path.join(nodePath, name))]));
    const before = files();
    expect(cli.ok(['secrets', 'get', 'v:a'], { env }).out).toBe('second');
    expect(cli.ok(['secrets', 'ls', 'v'], { env }).out).toContain('a');
    expect(cli.ok(['status', '--json'], { env }).json()).toMatchObject({ vaultCount: 1 });
    expect(cli.ok(['check', '--json'], { env }).json()).toMatchObject({ ok: true });
    expect(files(), 'reads leave the node as they found it (no LOCK, no torn file)').toEqual(before);
    // A write larger than the slack in the log's last page: the disk has no room for it.
    const failed = cli.run(['secrets', 'set', 'v:b'], { input: crypto.randomBytes(16 * 1024), env });
    expect(failed.code, failed.stderr).toBe(8);
    expect(failed.stderr).toContain('ERR_NO_SPACE');
    expect(failed.stderr).toContain('nothing was changed');
    expect(files(), 'nothing was changed: the same bytes in every file').toEqual(before);
    expect(cli.run(['secrets', 'get', 'v:b'], { env }).code).toBe(5);
    expect(cli.ok(['vaults', 'log', 'v', '--json'], { env }).json().commits).toHaveLength(3);
  });
});
