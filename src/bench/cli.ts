/**
 * CLI invocation cost with a running agent: every command kind through the Node CLI, and
 * `secrets get` / `secrets set` through the native client, the bin wrapper and Debian's `pass`
 * (a throwaway GnuPG home with an ed25519 key), side by side with ratios. Prints, never asserts.
 * Standalone: node dist/bench/cli.js [--quick]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const DIST = path.resolve(import.meta.dirname, '..');
const CLI = path.join(DIST, 'cli', 'keynode.cjs');
const NATIVE = path.join(DIST, 'native', 'keynode');
const WRAPPER = path.resolve(DIST, '..', 'bin', 'keynode');

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ms = (value: number) => `${value.toFixed(1)} ms`;

/** Wall time of one process run, in ms; throws if it fails (a figure of a failure is no figure). */
function timeRun(program: string, args: string[], env: NodeJS.ProcessEnv, input = ''): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(program, args, { env, input, stdio: ['pipe', 'ignore', 'pipe'] });
  const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`${program} ${args.join(' ')} failed: ${result.stderr?.toString().trim()}`);
  return elapsed;
}

function ensurePass(): boolean {
  if (spawnSync('pass', ['version'], { stdio: 'ignore' }).status === 0) return true;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
  const install = spawnSync('apt-get', ['install', '-y', '-qq', 'pass'], { stdio: 'ignore', env });
  return update.status === 0 && install.status === 0 && spawnSync('pass', ['version'], { stdio: 'ignore' }).status === 0;
}

export async function benchCli(options: { quick: boolean }): Promise<void> {
  const runs = options.quick ? 7 : 21;
  console.log(`\n== CLI invocations with a running agent (median of ${runs} runs, wall time, NODE_EXTRA_CA_CERTS unset) ==`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keynode-bench-cli-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: path.join(root, 'home'),
    KEYNODE_PATH: path.join(root, 'node'),
    XDG_RUNTIME_DIR: path.join(root, 'run'),
    KEYNODE_PASSWORD: 'bench password',
    KEYNODE_NO_PROMPT: '1',
  };
  delete env.NODE_EXTRA_CA_CERTS;
  fs.mkdirSync(env.HOME!, { recursive: true });
  fs.mkdirSync(env.XDG_RUNTIME_DIR!, { recursive: true, mode: 0o700 });
  const node = (args: string[], input = '') => execFileSync(process.execPath, [CLI, ...args], { env, input, stdio: ['pipe', 'pipe', 'pipe'] });
  const valueFile = path.join(root, 'value');
  fs.writeFileSync(valueFile, 'from a file', { mode: 0o600 });
  try {
    node(['init', '--kdf-memory', '8192', '--kdf-iterations', '1']);
    node(['agent', 'start', '--background']);
    node(['vaults', 'create', 'app']);
    for (let i = 0; i < 20; i++) node(['secrets', 'set', `app:dir/s${i}`], `value ${i}`);
    node(['secrets', 'set', 'app:db/password'], 'hunter2');

    let serial = 0;
    const copies: number[] = [];
    const kinds: Array<[string, () => [string[], string?]]> = [
      ['secrets get', () => [['secrets', 'get', 'app:db/password']]],
      ['secrets set (stdin)', () => [['secrets', 'set', 'app:db/password'], `v${serial++}`]],
      ['secrets set --file', () => [['secrets', 'set', 'app:filed', '--file', valueFile]]],
      ['secrets ls', () => [['secrets', 'ls', 'app:dir']]],
      ['secrets stat', () => [['secrets', 'stat', 'app:db/password']]],
      ['secrets mkdir', () => [['secrets', 'mkdir', `app:made/d${serial++}`]]],
      [
        'secrets cp',
        () => {
          copies.push(serial);
          return [['secrets', 'cp', 'app:dir/s0', `app:copies/c${serial++}`]];
        },
      ],
      ['secrets rm', () => [['secrets', 'rm', `app:copies/c${copies.shift()!}`]]],
      ['secrets env --format', () => [['secrets', 'env', 'app:dir', '--format', 'dotenv']]],
      ['vaults list', () => [['vaults', 'list']]],
      ['vaults log -n 5', () => [['vaults', 'log', 'app', '-n', '5']]],
      ['vaults diff', () => [['vaults', 'diff', 'app', 'HEAD~1', 'HEAD']]],
      ['status', () => [['status']]],
      ['agent status', () => [['agent', 'status']]],
      ['--version', () => [['--version']]],
      ['vaults list --help', () => [['vaults', 'list', '--help']]],
      ['--help (whole tree)', () => [['--help']]],
      ['completion bash (whole tree)', () => [['completion', 'bash']]],
    ];
    const baseline = median(Array.from({ length: runs }, () => timeRun(process.execPath, ['-e', '0'], env)));
    console.log(`   node -e 0 (Node's own start, for scale): ${ms(baseline)}`);
    for (const [name, make] of kinds) {
      const times: number[] = [];
      try {
        for (let i = 0; i < runs; i++) {
          const [args, input] = make();
          times.push(timeRun(process.execPath, [CLI, ...args], env, input));
        }
        // The ratio to Node's own start stays readable when the shared machine is slow.
        console.log(`   ${name.padEnd(30)} ${ms(median(times)).padStart(9)}   x${(median(times) / baseline).toFixed(2)} node -e 0   (target <= 45 ms)`);
      } catch (error) {
        console.log(`   ${name.padEnd(30)} no figure: ${(error as Error).message}`);
      }
    }

    const get = ['secrets', 'get', 'app:db/password'];
    const set = ['secrets', 'set', 'app:db/password'];
    const figures: Record<string, { get: number; set: number }> = {};
    const measure = (label: string, program: string, prefix: string[]) => {
      const gets = Array.from({ length: runs }, () => timeRun(program, [...prefix, ...get], env));
      const sets = Array.from({ length: runs }, () => timeRun(program, [...prefix, ...set], env, `n${serial++}`));
      figures[label] = { get: median(gets), set: median(sets) };
    };
    measure('node CLI', process.execPath, [CLI]);
    const native = fs.existsSync(NATIVE);
    if (native) {
      measure('native', NATIVE, []);
      measure('bin wrapper', WRAPPER, []);
    } else {
      console.log('   native client not built (no C compiler): skipped');
    }

    if (!options.quick && ensurePass()) {
      const gnupg = path.join(root, 'gnupg');
      fs.mkdirSync(gnupg, { mode: 0o700 });
      const passEnv: NodeJS.ProcessEnv = { ...env, GNUPGHOME: gnupg, PASSWORD_STORE_DIR: path.join(root, 'password-store') };
      // ed25519 signing key with a cv25519 encryption subkey: pass's fastest common setup.
      execFileSync(
        'gpg',
        ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', 'keynode bench <bench@keynode.invalid>', 'ed25519', 'sign', 'never'],
        { env: passEnv, stdio: 'ignore' },
      );
      const fingerprint = /^fpr:+([0-9A-F]+):/m.exec(
        execFileSync('gpg', ['--with-colons', '--list-keys', 'bench@keynode.invalid'], { env: passEnv }).toString(),
      )![1]!;
      execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-add-key', fingerprint, 'cv25519', 'encr', 'never'], {
        env: passEnv,
        stdio: 'ignore',
      });
      execFileSync('pass', ['init', 'bench@keynode.invalid'], { env: passEnv, stdio: 'ignore' });
      execFileSync('pass', ['insert', '-m', '-f', 'db/password'], { env: passEnv, input: 'hunter2\n', stdio: ['pipe', 'ignore', 'ignore'] });
      const shows = Array.from({ length: runs }, () => timeRun('pass', ['show', 'db/password'], passEnv));
      const inserts = Array.from({ length: runs }, () => timeRun('pass', ['insert', '-m', '-f', 'db/password'], passEnv, `n${serial++}\n`));
      figures['pass (gpg ed25519)'] = { get: median(shows), set: median(inserts) };
    } else {
      console.log(options.quick ? '   pass: skipped (--quick)' : '   pass is not installed and could not be installed here: skipped');
    }
    const pass = figures['pass (gpg ed25519)'];
    console.log(
      `   ${''.padEnd(20)} ${'secrets get'.padStart(12)} ${'secrets set'.padStart(12)}${pass ? '   ratio to pass show / insert (target <= 0.5)' : ''}`,
    );
    for (const [label, f] of Object.entries(figures)) {
      const ratios = pass ? `   ${(f.get / pass.get).toFixed(2)} / ${(f.set / pass.set).toFixed(2)}` : '';
      console.log(`   ${label.padEnd(20)} ${ms(f.get).padStart(12)} ${ms(f.set).padStart(12)}${ratios}`);
    }
  } finally {
    spawnSync(process.execPath, [CLI, 'agent', 'stop'], { env, stdio: 'ignore' });
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.dirname, 'cli.js')) {
  await benchCli({ quick: process.argv.includes('--quick') });
}
