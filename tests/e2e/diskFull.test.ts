import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliSandbox } from '../helpers/cli.js';
import { lockPresent } from '../helpers/index.js';
import os from 'node:os';

/** A real, tiny file system, when this machine lets us mount one (root in CI here). */
function mountTiny(sizeKib: number): string | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keynode-tiny-'));
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKib}k,mode=0700`, 'tmpfs', dir]);
  if (result.status === 0) return dir;
  fs.rmdirSync(dir);
  return null;
}

const mounted: string[] = [];
afterAll(() => {
  for (const dir of mounted) {
    spawnSync('umount', [dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const tiny = mountTiny(1024);
if (tiny) mounted.push(tiny);

describe('disk full', () => {
  it.skipIf(tiny === null)('fails a write with ERR_NO_SPACE, keeps every acknowledged write, and the node still opens', () => {
    const cli = cliSandbox();
    const nodePath = path.join(tiny!, 'node');
    const env = { KEYNODE_PATH: nodePath };
    cli.ok(['init', '--kdf-memory', '8192', '--kdf-iterations', '1'], { env });
    cli.ok(['vaults', 'create', 'v'], { env });
    // Random values: git stores identical content once, and objects are deflated.
    const values = Array.from({ length: 40 }, () => crypto.randomBytes(60 * 1024));
    const valueOf = (i: number) => values[i]!;
    const stored: number[] = [];
    let failure: ReturnType<typeof cli.run> | undefined;
    for (let i = 0; i < 40; i++) {
      const result = cli.run(['secrets', 'set', `v:fill/${i}`], { input: valueOf(i), env });
      if (result.code !== 0) {
        failure = result;
        break;
      }
      stored.push(i);
    }
    expect(failure, 'the 1 MiB file system should fill up').toBeDefined();
    expect(failure!.code).toBe(8);
    expect(failure!.stderr).toContain('ERR_NO_SPACE');
    expect(stored.length).toBeGreaterThan(3);
    for (const i of stored) expect(cli.ok(['secrets', 'get', `v:fill/${i}`], { env }).stdout.equals(valueOf(i))).toBe(true);
    expect(cli.run(['secrets', 'get', `v:fill/${stored.length}`], { env }).code).toBe(5); // the failed write left nothing
    // Make room, and the node takes writes again.
    cli.ok(['secrets', 'set', 'v:small'], { input: 'ok', env });
    expect(lockPresent(nodePath)).toBe(false);
  });
});
