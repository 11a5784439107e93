import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPasswordStore } from '../../src/importers/passwordStore.js';
import { isKeynodeError } from '../../src/errors.js';
import { tempDir } from '../helpers/index.js';

/** A stand-in gpg on PATH: records its arguments and environment, then runs `body`. */
function fakeGpg(body: string): { env: NodeJS.ProcessEnv; log: string } {
  const dir = tempDir('keynode-fake-gpg-');
  const log = path.join(dir, 'calls.log');
  fs.writeFileSync(
    path.join(dir, 'gpg'),
    `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a" >> "${log}"; done\nenv | grep '^KEYNODE_' >> "${log}"\necho --- >> "${log}"\n${body}\n`,
    { mode: 0o755 },
  );
  return { env: { PATH: `${dir}:${process.env.PATH ?? ''}` }, log };
}

describe('password-store import', () => {
  it('hands gpg absolute paths after --, with stdin closed, so a file named like an option stays a file', async () => {
    const store = tempDir('keynode-store-');
    for (const name of ['--output=evil.gpg', '-o.gpg', 'plain.gpg']) fs.writeFileSync(path.join(store, name), 'ciphertext');
    // Decrypting is `cat` of the last argument: an option-looking path would break it.
    const gpg = fakeGpg('for last in "$@"; do :; done; cat -- "$last"');
    const cwd = process.cwd();
    process.chdir(store);
    try {
      const result = await readPasswordStore('.', { env: gpg.env, concurrency: 1 }); // one at a time: one log
      expect(result.skipped).toEqual([]);
      expect(result.secrets.map((s) => [s.path, s.value.toString()])).toEqual([
        ['--output=evil', 'ciphertext'],
        ['-o', 'ciphertext'],
        ['plain', 'ciphertext'],
      ]);
    } finally {
      process.chdir(cwd);
    }
    const calls = fs.readFileSync(gpg.log, 'utf8').split('---\n').filter(Boolean);
    expect(calls).toHaveLength(3);
    for (const call of calls) {
      const args = call.trim().split('\n');
      expect(args.slice(0, -1)).toEqual(['--quiet', '--batch', '--yes', '--decrypt', '--']);
      expect(path.isAbsolute(args.at(-1)!)).toBe(true);
    }
  });

  it('a gpg that waits for input gets end-of-file; one that hangs is stopped and reported', async () => {
    const store = tempDir('keynode-store-');
    fs.writeFileSync(path.join(store, 'reads-stdin.gpg'), 'x');
    fs.writeFileSync(path.join(store, 'hangs.gpg'), 'x');
    const gpg = fakeGpg('case "$*" in *hangs*) exec sleep 30 ;; *) cat ;; esac');
    const result = await readPasswordStore(store, { env: gpg.env, timeoutMs: 1_000 });
    expect(result.secrets).toEqual([{ path: 'reads-stdin', value: Buffer.alloc(0) }]);
    expect(result.skipped).toEqual([{ path: 'hangs.gpg', reason: 'gpg could not decrypt it: gpg did not finish within 1 s' }]);
  });

  it('gives gpg only the environment it is handed', async () => {
    const store = tempDir('keynode-store-');
    fs.writeFileSync(path.join(store, 'a.gpg'), 'x');
    const gpg = fakeGpg('echo ok');
    process.env.KEYNODE_PASSWORD = 'must-not-leak';
    try {
      await readPasswordStore(store, { env: gpg.env });
    } finally {
      delete process.env.KEYNODE_PASSWORD;
    }
    expect(fs.readFileSync(gpg.log, 'utf8')).not.toContain('KEYNODE_');
  });

  it('without gpg at all it says so once, instead of skipping every file', async () => {
    const store = tempDir('keynode-store-');
    fs.writeFileSync(path.join(store, 'a.gpg'), 'x');
    const error = await readPasswordStore(store, { env: { PATH: tempDir('keynode-empty-path-') } }).catch((e: unknown) => e);
    expect(isKeynodeError(error, 'ERR_NOT_SUPPORTED')).toBe(true);
    expect((error as Error).message).toContain('gpg was not found');
  });
});
