import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI, cliSandbox } from '../helpers/cli.js';

const hasScript = spawnSync('script', ['--version']).status === 0;

/**
 * Run the CLI on a real pseudo-terminal (util-linux `script`), typing `lines` at its prompts
 * one after another. Returns what the terminal showed and the exit status.
 */
function onTerminal(args: string[], lines: string[], env: Record<string, string | undefined>): Promise<{ screen: string; code: number }> {
  return new Promise((resolve) => {
    const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) });
    let screen = '';
    let typed = 0;
    child.stdout.on('data', (d: Buffer) => {
      screen += d.toString();
      // Answer each prompt (a line ending in ": ") once it appears.
      const prompts = (screen.match(/: $|: \r?$/gm) ?? []).length;
      while (typed < lines.length && typed < prompts) child.stdin.write(`${lines[typed++]!}\r`);
    });
    child.on('close', (code) => resolve({ screen: screen.replace(/\r/g, ''), code: code ?? -1 }));
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
});
