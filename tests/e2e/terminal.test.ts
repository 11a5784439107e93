import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI, cliSandbox } from '../helpers/cli.js';

const hasScript = spawnSync('script', ['--version']).status === 0;

/** A CLI that still runs after this long is stuck at a prompt (a bug), not slow. */
const HANG_MS = 30_000;

/**
 * Run the CLI on a real pseudo-terminal (util-linux `script`), typing `lines` at its prompts
 * one after another, each as soon as its prompt appears; with `typeAhead`, all of them at once
 * when the first prompt appears (`pw⏎pw⏎`). Returns what the terminal showed and the exit
 * status (-1 with `hung` when it had to be killed).
 */
function onTerminal(
  args: string[],
  lines: string[],
  env: Record<string, string | undefined>,
  options: { typeAhead?: boolean } = {},
): Promise<{ screen: string; code: number; hung: boolean }> {
  return new Promise((resolve) => {
    const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)),
      detached: true, // its own process group, so a hung CLI can be killed with it
    });
    let screen = '';
    let typed = 0;
    let hung = false;
    const guard = setTimeout(() => {
      hung = true;
      process.kill(-child.pid!, 'SIGKILL');
    }, HANG_MS);
    child.stdout.on('data', (d: Buffer) => {
      screen += d.toString();
      // Answer each prompt (a line ending in ": ") once it appears.
      const prompts = (screen.match(/: $|: \r?$/gm) ?? []).length;
      if (options.typeAhead && prompts > 0 && typed === 0) {
        child.stdin.write(lines.map((line) => `${line}\r`).join(''));
        typed = lines.length;
      }
      while (typed < lines.length && typed < prompts) child.stdin.write(`${lines[typed++]!}\r`);
    });
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ screen: screen.replace(/\r/g, ''), code: code ?? -1, hung });
    });
  });
}

describe.skipIf(!hasScript)('a person at a terminal', () => {
  it('init asks for the password twice without echoing it; a mismatch changes nothing', async () => {
    const cli = cliSandbox();
    const env = { ...cli.env, KEYNODE_PASSWORD: undefined, KEYNODE_NO_PROMPT: undefined };
    const mismatch = await onTerminal(['init', '--kdf-memory', '8192', '--kdf-iterations', '1'], ['first-try', 'second-try'], env);
    expect(mismatch.code).toBe(2);
    expect(mismatch.screen).toContain('do not match');
    expect(cli.run(['status']).code).toBe(3); // no node was made
    const made = await onTerminal(['init', '--kdf-memory', '8192', '--kdf-iterations', '1'], ['typed secret pw', 'typed secret pw'], env);
    expect(made.code).toBe(0);
    expect(made.screen).toContain('Node password: ');
    expect(made.screen).toContain('Node password (again): ');
    expect(made.screen).toContain('Recovery phrase');
    expect(made.screen).not.toContain('typed secret pw');
    expect(cli.ok(['status', '--json'], { env: { KEYNODE_PASSWORD: 'typed secret pw' } }).json().vaultCount).toBe(0);
  });

  it('secrets set prompts for the value twice, hidden, and the password once', async () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    const env = { ...cli.env, KEYNODE_PASSWORD: undefined, KEYNODE_NO_PROMPT: undefined };
    const result = await onTerminal(['secrets', 'set', 'v:typed'], ['value at the prompt', 'value at the prompt', cli.env.KEYNODE_PASSWORD!], env);
    expect(result.code, result.screen).toBe(0);
    expect(result.screen).not.toContain('value at the prompt');
    expect(cli.ok(['secrets', 'get', 'v:typed']).out).toBe('value at the prompt');
  });

  it('keeps typed-ahead answers for the next prompt, hidden (pw⏎pw⏎ at the first prompt)', async () => {
    const cli = cliSandbox();
    const env = { ...cli.env, KEYNODE_PASSWORD: undefined, KEYNODE_NO_PROMPT: undefined };
    const made = await onTerminal(['init', '--kdf-memory', '8192', '--kdf-iterations', '1'], ['typed ahead pw', 'typed ahead pw'], env, { typeAhead: true });
    expect(made.hung, made.screen).toBe(false);
    expect(made.code, made.screen).toBe(0);
    expect(made.screen).toContain('Node password (again): ');
    expect(made.screen).not.toContain('typed ahead pw');
    expect(cli.ok(['status', '--json'], { env: { KEYNODE_PASSWORD: 'typed ahead pw' } }).json().vaultCount).toBe(0);
  });

  it('password asks for the new password even with KEYNODE_PASSWORD exported, and changes it', async () => {
    const cli = cliSandbox();
    cli.init();
    const env = { ...cli.env, KEYNODE_NO_PROMPT: undefined };
    const changed = await onTerminal(['password'], ['new pw at the prompt', 'new pw at the prompt'], env, { typeAhead: true });
    expect(changed.hung, changed.screen).toBe(false);
    expect(changed.code, changed.screen).toBe(0);
    expect(changed.screen).toContain('New password: ');
    expect(changed.screen).toContain('New password (again): ');
    expect(changed.screen).toContain('Password changed.');
    expect(changed.screen).not.toContain('new pw at the prompt');
    expect(cli.run(['status']).code).toBe(4); // the old password no longer opens it
    expect(cli.ok(['status', '--json'], { env: { KEYNODE_PASSWORD: 'new pw at the prompt' } }).json().vaultCount).toBe(0);
  });
});
