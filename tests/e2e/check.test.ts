import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliSandbox, startAgent } from '../helpers/cli.js';

type Sandbox = ReturnType<typeof cliSandbox>;

/** Without a password source, only the agent's session can serve the command. */
const viaAgent = { env: { KEYNODE_PASSWORD: undefined } };

/** A node with two vaults; the last write is a large secret ("prod:big") whose blob dominates the log's last batch. */
function seed(cli: Sandbox): { bigBatch: { start: number; end: number } } {
  cli.init();
  cli.ok(['vaults', 'create', 'prod']);
  cli.ok(['vaults', 'create', 'dev']);
  cli.ok(['secrets', 'set', 'prod:db/password'], { input: 'pw-one' });
  cli.ok(['secrets', 'set', 'prod:db/password'], { input: 'pw-two' });
  cli.ok(['secrets', 'set', 'dev:key'], { input: 'k' });
  const store = path.join(cli.nodePath, 'store.log');
  const start = fs.statSync(store).size;
  cli.ok(['secrets', 'set', 'prod:big'], { input: 'x'.repeat(20_000) });
  return { bigBatch: { start, end: fs.statSync(store).size } };
}

/** Flip one byte in place in the middle of the big secret's batch: inside its sealed value. */
function flipBigSecret(cli: Sandbox, batch: { start: number; end: number }): void {
  const fd = fs.openSync(path.join(cli.nodePath, 'store.log'), 'r+');
  const at = batch.start + Math.floor((batch.end - batch.start) / 2);
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, at);
  byte[0]! ^= 0x01;
  fs.writeSync(fd, byte, 0, 1, at);
  fs.closeSync(fd);
}

describe('keynode check (built CLI, with and without an agent)', () => {
  it('a healthy node: counts, exit 0, the same report in process and through the agent', () => {
    const cli = cliSandbox();
    seed(cli);
    const local = cli.ok(['check', '--json']);
    const report = local.json();
    expect(Object.keys(report)).toEqual(['ok', 'vaults', 'records', 'objects', 'orphans', 'storeBytes', 'liveBytes', 'deadBytes', 'problems', 'store']);
    // Exact per-object counts are tested in tests/node/check.test.ts; here: 2 creates + 4 sets.
    expect(report).toMatchObject({ ok: true, vaults: 2, orphans: 0, problems: [] });
    expect(report.objects.commits).toBe(6);
    // History index records too: hist/meta per vault, hist/c per commit, hist/p per changed path
    // (prod: db, db/password, big; dev: key) and a prefix bucket per commit (fewer only if two
    // commits of one vault share their first 4 hex digits).
    const index = 2 + report.objects.commits + 4;
    const buckets = report.records - (2 + 2 + report.objects.commits + report.objects.trees + report.objects.blobs) - index;
    expect(buckets).toBeGreaterThanOrEqual(report.objects.commits - 1);
    expect(buckets).toBeLessThanOrEqual(report.objects.commits);
    const human = cli.ok(['check']);
    expect(human.out.split('\n').filter(Boolean)).toEqual([
      'vaults   2',
      `objects  6 commits, ${report.objects.trees} trees, ${report.objects.blobs} blobs`,
      `records  ${report.records} live, 0 orphan`,
      `store    ${report.storeBytes} bytes, ${report.deadBytes} dead`,
      'damage   none',
    ]);
    expect(human.stderr).toBe('');

    startAgent(cli);
    const agent = cli.run(['check', '--json'], viaAgent);
    expect({ code: agent.code, out: agent.out, err: agent.stderr }).toEqual({ code: 0, out: local.out, err: '' });
  });

  it('damage: exit 7 with one line per problem (human) or the full report (--json), with and without an agent', () => {
    const cli = cliSandbox();
    const { bigBatch } = seed(cli);
    flipBigSecret(cli, bigBatch);

    const human = cli.run(['check']);
    expect(human.code).toBe(7);
    expect(human.out).toContain('damage   1 problem\n');
    expect(human.out).toMatch(/^damaged-record: vault "prod": blob [0-9a-f]{12} at "big" \(in commit [0-9a-f]{12}\) failed its integrity check$/m);
    expect(human.stderr).toBe('keynode: the node is damaged: 1 problem found (ERR_INTEGRITY)\n');

    const json = cli.run(['check', '--json']);
    expect(json.code).toBe(7);
    expect(json.stderr).toBe('');
    const report = json.json(); // one document: the report, not an error object
    expect(report).toMatchObject({ ok: false, orphans: 0, problems: [{ kind: 'damaged-record', damage: true, vault: 'prod', path: 'big' }] });
    expect(report.problems).toHaveLength(1);
    // The rest was still checked: the other vault and prod's earlier secrets.
    expect(report.objects.blobs).toBe(3);

    startAgent(cli);
    const agent = cli.run(['check', '--json'], viaAgent);
    expect({ code: agent.code, out: agent.out }).toEqual({ code: 7, out: json.out });
    expect(cli.run(['check'], viaAgent).code).toBe(7);
    // Reading the damaged secret itself fails the same way.
    expect(cli.run(['secrets', 'get', 'prod:big'], viaAgent).code).toBe(7);
  });
});
