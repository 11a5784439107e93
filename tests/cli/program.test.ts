import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CommanderError, type Command } from 'commander';
import { describe, expect, it, vi } from 'vitest';
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
    for (const args of [
      [],
      ['--help'],
      ['vaults'],
      ['vaults', '--help'],
      ['vaults', 'lst'],
      ['help', 'vaults'],
      ['secrets', 'help', 'get'],
      ['completion', 'bash'],
      ['--bogus', 'status'],
      ['vaults', '-x', 'list'],
    ]) {
      expect({ args, entry: commandFor(args) }).toEqual({ args, entry: undefined });
    }
  });

  it('loads one CommonJS bundle per invocation and no ES module of ours', () => {
    // Records every file the CLI loads: CommonJS through require.cache, ES modules through a resolve hook.
    const root = tempDir('keynode-modules-');
    const log = path.join(root, 'modules.log');
    const hooks = path.join(root, 'hooks.mjs');
    fs.writeFileSync(
      hooks,
      `import fs from 'node:fs';\nexport async function resolve(specifier, context, next) {\n  const result = await next(specifier, context);\n  fs.appendFileSync(${JSON.stringify(log)}, result.url + '\\n');\n  return result;\n}\n`,
    );
    const register = path.join(root, 'register.mjs');
    fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
    const atExit = path.join(root, 'atExit.cjs');
    fs.writeFileSync(
      atExit,
      `process.on('exit', () => require('node:fs').appendFileSync(${JSON.stringify(log)}, Object.keys(require.cache).map((file) => 'file://' + file).join('\\n') + '\\n'));\n`,
    );
    const repo = `file://${path.resolve(CLI, '../../..')}/`;
    const loaded = (args: string[]) => {
      fs.rmSync(log, { force: true });
      runCli(args, ['--import', register, '--require', atExit]);
      const urls = fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter((url) => url.startsWith('file://') && !url.startsWith(`file://${root}`));
      return [...new Set(urls.map((url) => (url.startsWith(repo) ? url.slice(repo.length) : url)))].sort();
    };
    expect(loaded(['secrets', 'stat'])).toEqual(['dist/cli/bundles/secrets-stat.cjs', 'dist/cli/keynode.cjs', 'package.json']); // a usage error: commander reports it
    expect(loaded(['--json', 'vaults', 'ls', '--bogus'])).toEqual(['dist/cli/bundles/vaults-list.cjs', 'dist/cli/keynode.cjs', 'package.json']);
    expect(loaded(['secrets', 'mv', 'a:b'])).toEqual(['dist/cli/bundles/secrets-transfer.cjs', 'dist/cli/keynode.cjs', 'package.json']);
    expect(loaded(['--version'])).toEqual(['dist/cli/keynode.cjs', 'package.json']);
    // Help for the whole program shows every command: one bundle holds them all.
    expect(loaded(['--help'])).toEqual(['dist/cli/bundles/all.cjs', 'dist/cli/keynode.cjs', 'package.json']);
  });

  it('reports usage errors as the whole tree does', async () => {
    const full = await buildProgram();
    const commandAt = (words: string[]) => {
      let command = full;
      for (const word of words) command = command.commands.find((c) => c.name() === word || c.aliases().includes(word))!;
      return command;
    };
    const leaves = commandPaths(full).filter((words) => words.length > 0 && commandAt(words).commands.length === 0);
    expect(leaves.length).toBeGreaterThan(30);
    const inProcess = async (args: string[]) => {
      let stderr = '';
      const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
        stderr += String(chunk);
        return true;
      });
      try {
        await (await buildProgram()).parseAsync(['node', 'keynode', ...args]);
        return { code: 0, stderr };
      } catch (error) {
        expect(error).toBeInstanceOf(CommanderError); // parsing fails before any action runs
        return { code: (error as CommanderError).exitCode === 0 ? 0 : 2, stderr };
      } finally {
        write.mockRestore();
      }
    };
    for (const words of leaves) {
      // An unknown option, and (for commands with required arguments) none of them: both fail in
      // commander's parsing, before any action could run in this process.
      const required = commandAt(words).registeredArguments.some((argument) => argument.required);
      for (const args of [[...words, '--no-such-option'], ...(required ? [words] : [])]) {
        const expected = await inProcess(args);
        expect(expected.code).toBe(2);
        const { code, stderr } = runCli(args);
        expect({ args, code, stderr }).toEqual({ args, code: expected.code, stderr: expected.stderr });
      }
    }
  });

  it('keeps completion scripts complete', () => {
    const bash = runCli(['completion', 'bash']);
    expect(bash.code).toBe(0);
    for (const word of ['"vaults list"', '"secrets get"', '"agent unlock"', '--node-path', '--version']) expect(bash.stdout).toContain(word);
  });
});
