import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { randomBytes } from '../../src/crypto/random.js';
import { Keyspace } from '../../src/storage/Keyspace.js';
import { LogStore, STORE_FILE, type BatchOp } from '../../src/storage/LogStore.js';
import { createTestNode, runUntilKilled, tempDir } from '../helpers/index.js';

const compactor = fileURLToPath(new URL('../fixtures/crashStepCompactor.mjs', import.meta.url));
const hasGit = spawnSync('git', ['--version']).status === 0;

describe('adversarial: the index checkpoint and compaction in steps under SIGKILL', () => {
  it('a kill at any step of a compaction in steps, with writes and background checkpoints in flight, loses no acknowledged write', async () => {
    const dir = tempDir();
    const batchKey = randomBytes(32);
    const secret = randomBytes(32);
    const keyspace = new Keyspace(secret);
    LogStore.create(dir, batchKey);
    const seed = LogStore.open(dir, batchKey);
    for (let start = 0; start < 20_000; start += 1000) {
      seed.write(Array.from({ length: 1000 }, (_, i): BatchOp => ({ keyspace, name: `seed${start + i}`, value: Buffer.from(`s${start + i}`) })));
    }
    seed.close();
    /** Last acknowledged write of each name: its number, negative when it was a delete. */
    const expected = new Map<string, number>();
    const learn = (i: number) => {
      expected.set(`k${i % 40}`, i);
      if (i % 7 === 0) expected.set(`k${(i * 3) % 40}`, -i);
    };
    const valueOf = (store: LogStore, name: string) => store.get(keyspace, name)?.toString('latin1', 0, 12).split(':')[0];
    let next = 1;
    for (let round = 0; round < 6; round++) {
      let acked = next - 1;
      await runUntilKilled([compactor, dir, batchKey.toString('hex'), secret.toString('hex'), String(next), String(4 + round)], (line, child) => {
        const match = /^ACK (\d+)$/.exec(line);
        if (match) {
          acked = Number(match[1]);
          learn(acked);
          // Kill at varied points: inside a compaction's walk, its fsync, its carry-over, or a checkpoint.
          if (acked - next >= 6 + round * 9) setTimeout(() => child.kill('SIGKILL'), round % 3);
        }
        expect(line.startsWith('COMPACT-FAILED'), line).toBe(false);
      });
      const opened = LogStore.open(dir, batchKey); // the mark accepts what is on disk
      const full = LogStore.open(dir, batchKey, { useCheckpoint: false });
      // The write in flight at the kill may or may not have landed; nothing acknowledged is lost.
      const inFlight = acked + 1;
      const landed = valueOf(opened, `k${inFlight % 40}`) === `v${inFlight}`;
      if (landed) learn(inFlight);
      for (const [name, i] of expected) {
        expect(valueOf(opened, name), `${name} after round ${round}`).toBe(i > 0 ? `v${i}` : undefined);
        expect(valueOf(full, name)).toBe(valueOf(opened, name));
      }
      expect(opened.get(keyspace, 'seed19999')?.toString()).toBe('s19999');
      expect(opened.stats()).toEqual(full.stats());
      opened.verifyLog();
      // A write (the next run's first) clears what the kill left: a compaction's new log, checkpoint temps.
      opened.write([{ keyspace, name: 'probe', value: Buffer.from(String(round)) }]);
      await opened.settled(); // a checkpoint that write may start is this process's own
      expect(fs.readdirSync(dir).filter((name) => name.endsWith('.tmp') || name === `${STORE_FILE}.compact`)).toEqual([]);
      opened.close();
      full.close();
      next = inFlight + 1;
    }
  }, 60_000);
});

describe('adversarial: trees stored as deltas under hostile names', () => {
  it('names that sort apart in UTF-8 and UTF-16, chunk boundaries, emptied and refilled directories, a far revert, a move: git fsck --strict, then a vault delete leaves no orphan', async () => {
    const { node } = await createTestNode();
    const other = await node.vaults.createVault('other');
    await other.writeSecret('keep/me', Buffer.from('kept'));
    const vault = await node.vaults.createVault('v');
    const hostile = [
      'a',
      'a.b',
      'a-b',
      'a0',
      'a b',
      '\u00e9',
      'e\u0301',
      '\uE000x',
      '\uFFFDx',
      '\uFF61',
      '\u{1F600}',
      'a\u{1F600}',
      'a\uE000',
      'Z',
      '~x',
      '-',
      '"q"',
      '#',
      '%20',
    ];
    const model = new Map<string, string>();
    const initial: Array<{ path: string; value: Buffer }> = [];
    // 600 entries: three chunks of 256, so edits land on both sides of the boundaries.
    for (let i = 0; i < 600; i++) initial.push({ path: `big/s${String(i).padStart(4, '0')}`, value: Buffer.from(`v${i}`) });
    for (const name of hostile) initial.push({ path: `big/${name}`, value: Buffer.from(`b-${name}`) }, { path: `h/${name}`, value: Buffer.from(`h-${name}`) });
    await vault.writeSecrets(initial);
    for (const { path: p, value } of initial) model.set(p, value.toString());
    const first = (await vault.log({ limit: 1 }))[0]!.commit;
    // A directory "a" beside the secrets "a.b", "a-b", "a0" (git keys it "a/").
    await vault.remove('h/a');
    await vault.writeSecret('h/a/inner', Buffer.from('dir-a'));
    // Delta commits at the first, last and boundary entries, deletes and re-adds.
    for (let k = 0; k < 70; k++) {
      const p = `big/s${String([0, 599, 255, 256, 511, 512, 257][k % 7]).padStart(4, '0')}`;
      if (k % 3 === 0) await vault.remove(p);
      else await vault.writeSecret(p, Buffer.from(`w${k}`));
    }
    // Empty a directory and refill it; move the big one; then revert to the first commit.
    await vault.remove('h', { recursive: true });
    for (const name of hostile.slice(0, 6)) await vault.writeSecret(`h/${name}`, Buffer.from(`again-${name}`));
    await vault.move('big', 'moved/big');
    await vault.writeSecret('moved/big/s0300', Buffer.from('moved'));
    await vault.revert(first);
    for (const [p, value] of model) expect((await vault.readSecret(p)).toString(), p).toBe(value);
    await vault.writeSecret('big/\u{1F600}', Buffer.from('after revert'));
    model.set('big/\u{1F600}', 'after revert');
    if (hasGit) {
      const work = tempDir();
      await vault.exportBundle(path.join(work, 'v.bundle'));
      const git = (args: string[]) => spawnSync('git', args, { cwd: work, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: work } });
      expect(git(['clone', '-q', 'v.bundle', 'clone']).status).toBe(0);
      const fsck = git(['-C', 'clone', 'fsck', '--strict', '--full']);
      expect(fsck.status, fsck.stderr).toBe(0);
      const files = git(['-C', 'clone', 'ls-tree', '-r', '-z', '--name-only', 'HEAD']).stdout.split('\0').filter(Boolean).sort();
      expect(files).toEqual([...model.keys()].sort());
      for (const file of files) expect(fs.readFileSync(path.join(work, 'clone', file), 'utf8')).toBe(model.get(file));
    }
    expect((await node.check()).orphans).toBe(0);
    await node.vaults.deleteVault('v');
    const report = await node.check();
    expect(report.ok).toBe(true);
    expect(report.orphans).toBe(0);
    expect((await other.readSecret('keep/me')).toString()).toBe('kept');
    node.close();
  }, 60_000);
});
