import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';
import type { SecretEntry } from '../../src/vaults/Vault.js';
import { CLI, cliSandbox, startAgent } from '../helpers/cli.js';
import { TEST_KDF, TEST_PASSWORD } from '../helpers/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Depth first, by name: the order `secrets ls` has always printed (computed here independently of the walk). */
function byPathSegments(a: SecretEntry, b: SecretEntry): number {
  const [x, y] = [a.path.split('/'), b.path.split('/')];
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return x.length - y.length;
}

async function makeNode(nodePath: string, build: (node: KeynodeNode) => Promise<void>): Promise<void> {
  const { node } = await KeynodeNode.create({ nodePath, password: TEST_PASSWORD, kdf: TEST_KDF });
  try {
    await build(node);
  } finally {
    node.close();
  }
}

describe('secrets ls and vaults log stream (e2e)', () => {
  it('print byte for byte what they printed whole, with and without the agent', async () => {
    const cli = cliSandbox();
    const value = Buffer.from('v');
    let entries: SecretEntry[] = [];
    await makeNode(cli.nodePath, async (node) => {
      const vault = await node.vaults.createVault('app');
      // A directory walked in place (over 4,096 entries) with names around '/' in git's order.
      const flat = Array.from({ length: 5_000 }, (_, i) => ({ path: `big/k${String(i).padStart(5, '0')}`, value }));
      await vault.writeSecrets(
        [...flat, { path: 'big/k00007/x', value }, { path: 'big/k00007-b', value }, { path: 'big/k00007.c', value }].filter((e) => e.path !== 'big/k00007'),
      );
      for (let i = 0; i < 40; i++)
        await vault.writeSecret(`d${i % 4}/e${i % 3}/s${i}`, Buffer.from(`${i}`), { message: i % 7 === 0 ? `multi\nline ${i}\n` : `commit ${i}` });
      entries = await vault.list();
    });
    const sorted = [...entries].sort(byPathSegments);
    expect(entries).toEqual(sorted);
    const cases: string[][] = [
      ['secrets', 'ls', 'app'],
      ['secrets', 'ls', 'app', '--json'],
      ['secrets', 'ls', 'app:d1'],
      ['secrets', 'ls', 'app:d1/e1/s1', '--json'],
      ['secrets', 'ls', 'app:d2', '--tree'],
      ['secrets', 'ls', 'app:nope', '--json'],
      ['vaults', 'log', 'app'],
      ['vaults', 'log', 'app', '--json'],
      ['vaults', 'log', 'app', '-n', '3', '--json'],
      ['vaults', 'log', 'app', '--path', 'd1'],
      ['vaults', 'log', 'nope'],
    ];
    const local = cases.map((args) => cli.run(args));
    // What the commands printed before they streamed: one document (or the lines) at once.
    expect(local[0]!.out).toBe(sorted.map((e) => e.path + (e.type === 'dir' ? '/' : '')).join('\n') + '\n');
    expect(local[1]!.out).toBe(JSON.stringify({ vault: 'app', path: '', entries: sorted }, null, 2) + '\n');
    const commits = JSON.parse(local[7]!.out) as { vault: string; commits: Array<{ commit: string; time: string; message: string }> };
    expect(commits.commits).toHaveLength(42);
    expect(local[7]!.out).toBe(JSON.stringify(commits, null, 2) + '\n');
    expect(local[6]!.out).toBe(commits.commits.map((c) => `${c.commit.slice(0, 12)}  ${c.time}  ${c.message}`).join('\n') + '\n');
    expect(local[5]!.code).toBe(5);

    startAgent(cli);
    const viaAgent = cases.map((args) => cli.run(args));
    for (const [i, args] of cases.entries()) {
      expect(viaAgent[i]!.stdout.equals(local[i]!.stdout), `keynode ${args.join(' ')}`).toBe(true);
      expect([viaAgent[i]!.code, viaAgent[i]!.stderr], `keynode ${args.join(' ')}`).toEqual([local[i]!.code, local[i]!.stderr]);
    }
  }, 120_000);

  it("stop the agent's walk when the reader goes away (`| head -1`)", async () => {
    const cli = cliSandbox();
    const value = Buffer.from('v');
    await makeNode(cli.nodePath, async (node) => {
      const vault = await node.vaults.createVault('big');
      await vault.writeSecrets(Array.from({ length: 200_000 }, (_, i) => ({ path: `s${String(i).padStart(7, '0')}`, value })));
    });
    const agent = startAgent(cli);
    const piped = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${CLI}" secrets ls big | head -1`], { env: cli.env });
    expect(piped.stdout.toString()).toBe('s0000000\n');
    expect(piped.status).toBe(0); // the CLI ends quietly on a closed pipe
    // The agent logs how each stream ended: here, its connection closed before the end.
    let log = '';
    for (let t = 0; t < 500 && !/secrets\.ls \S+ [\d.]+ms \(stream\)/.test(log); t++) {
      await sleep(10);
      log = fs.readFileSync(agent.log, 'utf8');
    }
    expect(log).toMatch(/secrets\.ls closed [\d.]+ms \(stream\)/);
  }, 120_000);
});
