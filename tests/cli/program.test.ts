import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, commandFor } from '../../src/cli/program.js';
import { CLI } from '../helpers/cli.js';
import { tempDir } from '../helpers/index.js';

/** Every command path of the full tree: [], ['vaults'], ['vaults', 'list'], ... */
function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return [prefix, ...command.commands.flatMap((sub) => [...sub.aliases().map((alias) => [...prefix, alias]), ...commandPaths(sub, [...prefix, sub.name()])])];
}

function runCli(args: string[], nodeOptions: string[] = []) {
  const root = tempDir('keynode-program-');
  const result = spawnSync(process.execPath, [...nodeOptions, CLI, ...args], {
    env: { PATH: process.env.PATH, HOME: root, KEYNODE_PATH: path.join(root, 'node'), XDG_RUNTIME_DIR: root, KEYNODE_NO_PROMPT: '1' },
    encoding: 'utf8',
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, root };
}

describe('the lazily loaded command tree', () => {
  it('prints the same help for every command and subcommand as the whole tree', async () => {
    const full = await buildProgram();
    const paths = commandPaths(full);
    expect(paths.length).toBeGreaterThan(35);
    for (const words of paths) {
      let command = full;
      for (const word of words) command = command.commands.find((c) => c.name() === word || c.aliases().includes(word))!;
      const { code, stdout } = runCli([...words, '--help']);
      expect({ words, code, stdout }).toEqual({ words, code: 0, stdout: command.helpInformation() });
    }
  });

  it('routes only plain command words to one module; anything else loads the whole tree', () => {
    expect(commandFor(['vaults', 'list'])?.names).toEqual(['list', 'ls']);
    expect(commandFor(['--json', '--node-path', '/x', 'vaults', 'ls'])?.names).toEqual(['list', 'ls']);
    expect(commandFor(['--node-path=/x', 'secrets', 'mv', 'a:b', 'a:c'])?.names).toEqual(['mv']);
    expect(commandFor(['agent', 'status'])?.group).toBe('agent');
    expect(commandFor(['status'])?.group).toBeUndefined();
    for (const args of [[], ['--help'], ['vaults'], ['vaults', '--help'], ['vaults', 'lst'], ['help', 'vaults'], ['secrets', 'help', 'get'], ['completion', 'bash'], ['--bogus', 'status'], ['vaults', '-x', 'list']]) {
      expect({ args, entry: commandFor(args) }).toEqual({ args, entry: undefined });
    }
  });

  it('loads only the module of the command that runs', () => {
    // A module-resolution hook that records every module the CLI loads.
    const root = tempDir('keynode-modules-');
    const log = path.join(root, 'modules.log');
    const hooks = path.join(root, 'hooks.mjs');
    fs.writeFileSync(hooks, `import fs from 'node:fs';\nexport async function resolve(specifier, context, next) {\n  const result = await next(specifier, context);\n  fs.appendFileSync(${JSON.stringify(log)}, result.url + '\\n');\n  return result;\n}\n`);
    const register = path.join(root, 'register.mjs');
    fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
    const loaded = (args: string[]) => {
      fs.rmSync(log, { force: true });
      runCli(args, ['--import', register]);
      const urls = fs.readFileSync(log, 'utf8').split('\n');
      return [...new Set(urls.filter((url) => url.includes('/dist/cli/commands/')).map((url) => url.slice(url.indexOf('/dist/cli/commands/') + '/dist/cli/commands/'.length)))].sort();
    };
    expect(loaded(['vaults', 'list'])).toEqual(['vaults/list.js']);
    expect(loaded(['--json', 'secrets', 'ls', 'v:'])).toEqual(['secrets/ls.js']);
    expect(loaded(['agent', 'status'])).toEqual(['agent/control.js']);
    // Help for the whole program shows every command, so it loads them all.
    expect(loaded(['--help']).length).toBeGreaterThan(20);
  });

  it('keeps completion scripts complete', () => {
    const bash = runCli(['completion', 'bash']);
    expect(bash.code).toBe(0);
    for (const word of ['"vaults list"', '"secrets get"', '"agent unlock"', '--node-path', '--version']) expect(bash.stdout).toContain(word);
  });
});
