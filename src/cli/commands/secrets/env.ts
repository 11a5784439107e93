import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import type { Command } from 'commander';
import { KeynodeError } from '../../../errors.js';
import { EnvCollector, checkDerivedEnvName, envNameFor, validateEnvName } from '../../../formats/envNames.js';
import { serializeDotenv, serializeShell } from '../../../formats/dotenv.js';
import { baseName, parseSecretRef, type SecretRef } from '../../../vaults/paths.js';
import type { KeynodeClient } from '../../../client/KeynodeClient.js';
import { childEnv, fromBase64, globalOptions, withClient } from '../../context.js';

const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

/** Resolve refs and --var pairs to environment variables (one request). */
export async function collectEnv(client: KeynodeClient, refs: SecretRef[], named: Array<{ name: string; ref: SecretRef }>): Promise<Record<string, string>> {
  const items = [...refs, ...named.map((n) => n.ref)].map((r) => ({ vault: r.vault, path: r.path }));
  const { items: resolved } = await client.call('secrets.collect', { items });
  const env = new EnvCollector();
  resolved.forEach((item, i) => {
    const explicit = i >= refs.length ? named[i - refs.length]!.name : undefined;
    if (explicit !== undefined) {
      const single = item.entries.length === 1 && item.entries[0]!.path === '';
      if (!single) throw new KeynodeError('ERR_IS_A_DIRECTORY', `--var ${explicit}: ${item.vault}:${item.path} is a directory, not a secret`);
      env.add(explicit, `${item.vault}:${item.path}`, fromBase64(item.entries[0]!.value));
      return;
    }
    for (const entry of item.entries) {
      const relative = entry.path === '' ? baseName(item.path) : entry.path;
      const full = entry.path === '' ? item.path : item.path === '' ? entry.path : `${item.path}/${entry.path}`;
      const source = `${item.vault}:${full}`;
      env.add(checkDerivedEnvName(envNameFor(relative), source), source, fromBase64(entry.value));
    }
  });
  return env.toObject();
}

function parseVar(text: string): { name: string; ref: SecretRef } {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new KeynodeError('ERR_USAGE', `--var takes NAME=VAULT:PATH, got "${text}"`);
  return { name: validateEnvName(text.slice(0, eq)), ref: parseSecretRef(text.slice(eq + 1)) };
}

/** Bytes exec(2) copies for argv and the environment ("NAME=value\0" each). */
function execBytes(command: string[], env: NodeJS.ProcessEnv): { total: number; largest: number } {
  let total = 0;
  let largest = 0;
  for (const arg of command) total += Buffer.byteLength(arg) + 1;
  for (const [name, value] of Object.entries(env)) {
    const size = Buffer.byteLength(name) + Buffer.byteLength(value ?? '') + 2;
    total += size;
    largest = Math.max(largest, size);
  }
  return { total, largest };
}

function spawnError(error: unknown, command: string[], env: NodeJS.ProcessEnv): KeynodeError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'E2BIG') {
    const { total, largest } = execBytes(command, env);
    return new KeynodeError(
      'ERR_INVALID_ARGUMENT',
      `the environment is too large for exec (${total} bytes in all, largest variable ${largest} bytes); pass fewer secrets, or use --format or inject to a file`,
      { bytes: total, largestBytes: largest },
    );
  }
  return new KeynodeError('ERR_IO', `cannot run ${command[0]!}: ${code ?? (error as Error).message}`);
}

/** Run `command` with `vars` added to the environment; resolves to its exit status (128+signal if killed). */
function runWithEnv(command: string[], vars: Record<string, string>): Promise<number> {
  const env = childEnv(vars); // never the CLI's own credentials
  return new Promise((resolve, reject) => {
    // Handlers first: a signal that arrives while the child starts must not kill keynode
    // (the default action) and orphan the command; it is held and delivered once it exists.
    const started: { child?: ChildProcess } = {};
    const held: NodeJS.Signals[] = [];
    const forward = (signal: NodeJS.Signals) => (started.child ? started.child.kill(signal) : held.push(signal));
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    let child: ChildProcess;
    try {
      child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env });
    } catch (error) {
      // exec(2) failures other than "not found"/"not allowed" are thrown, not emitted.
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      reject(spawnError(error, command, env));
      return;
    }
    started.child = child;
    for (const signal of held.splice(0)) child.kill(signal);
    const done = (code: number) => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      resolve(code);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      process.stderr.write(`keynode: cannot run ${command[0]!}: ${error.code === 'ENOENT' ? 'command not found' : error.message}\n`);
      done(error.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, signal) => done(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });
}

export function register(secrets: Command): void {
  secrets
    .command('env')
    .description('run a command with secrets as environment variables (or print them with --format)')
    .argument('[refs...]', 'VAULT, VAULT:DIR or VAULT:PATH; then -- CMD ARGS...')
    .option('--var <NAME=VAULT:PATH>', 'set NAME from one secret (repeatable)', (value: string, previous: string[] = []) => [...previous, value])
    .option('--format <format>', 'print instead of running: dotenv, json or shell')
    .action(async (args: string[], options: { var?: string[]; format?: string }, command: Command) => {
      const global = globalOptions(command);
      const dash = process.argv.indexOf('--');
      const commandLine = dash >= 0 ? process.argv.slice(dash + 1) : [];
      const refArgs = args.slice(0, args.length - commandLine.length);
      if (options.format !== undefined && !['dotenv', 'json', 'shell'].includes(options.format)) {
        throw new KeynodeError('ERR_USAGE', '--format is dotenv, json or shell');
      }
      if (options.format === undefined && commandLine.length === 0) throw new KeynodeError('ERR_USAGE', 'give a command after --, or --format to print');
      if (options.format !== undefined && commandLine.length > 0) throw new KeynodeError('ERR_USAGE', 'use either --format or a command, not both');
      const refs = refArgs.map((ref) => parseSecretRef(ref, { allowRoot: true }));
      const named = (options.var ?? []).map(parseVar);
      if (refs.length === 0 && named.length === 0) throw new KeynodeError('ERR_USAGE', 'name at least one VAULT[:PATH] or --var NAME=VAULT:PATH');
      const vars = await withClient(global, (client) => collectEnv(client, refs, named));
      if (options.format === 'json' || (options.format === undefined && global.json && commandLine.length === 0)) {
        process.stdout.write(JSON.stringify(vars, null, 2) + '\n');
      } else if (options.format === 'dotenv') {
        process.stdout.write(serializeDotenv(vars));
      } else if (options.format === 'shell') {
        process.stdout.write(serializeShell(vars));
      } else {
        process.exitCode = await runWithEnv(commandLine, vars);
      }
    });
}
