import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { reportError } from './output.js';
import * as init from './commands/init.js';
import * as recover from './commands/recover.js';
import * as password from './commands/password.js';
import * as status from './commands/status.js';
import * as check from './commands/check.js';
import * as vaultsCreate from './commands/vaults/create.js';
import * as vaultsList from './commands/vaults/list.js';
import * as vaultsRename from './commands/vaults/rename.js';
import * as vaultsDelete from './commands/vaults/delete.js';
import * as vaultsTag from './commands/vaults/tag.js';
import * as vaultsLog from './commands/vaults/log.js';
import * as vaultsDiff from './commands/vaults/diff.js';
import * as vaultsRevert from './commands/vaults/revert.js';
import * as vaultsExport from './commands/vaults/export.js';
import * as secretsSet from './commands/secrets/set.js';
import * as secretsGet from './commands/secrets/get.js';
import * as secretsLs from './commands/secrets/ls.js';
import * as secretsRm from './commands/secrets/rm.js';
import * as secretsMkdir from './commands/secrets/mkdir.js';
import * as secretsStat from './commands/secrets/stat.js';
import { registerTransfer } from './commands/secrets/transfer.js';
import * as agentStart from './commands/agent/start.js';
import * as secretsEnv from './commands/secrets/env.js';
import * as importCommand from './commands/import.js';
import * as completion from './commands/completion.js';
import * as secretsInject from './commands/secrets/inject.js';
import * as agentControl from './commands/agent/control.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** The whole command tree. Command modules load heavy code (git, argon2) only when they run. */
export function buildProgram(): Command {
  const program = new Command('keynode')
    .description('self-hosted, decentralised secret manager')
    .version(version, '-V', 'print the keynode version (also: keynode --version)')
    .option('--node-path <dir>', 'the node directory (else KEYNODE_PATH, $XDG_DATA_HOME/keynode, ~/.local/share/keynode)')
    .option('--password-file <file>', 'read the node password from FILE (else KEYNODE_PASSWORD, else a prompt)')
    .option('--lock-timeout <ms>', 'how long to wait for another process using the node (default 5000)')
    .option('--json', 'machine-readable output (and errors) on stdout')
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions(false)
    .exitOverride();
  program.configureOutput({ outputError: (text, write) => write(`keynode: ${text.replace(/^error: /, '')}`) });

  for (const command of [init, recover, password, status, check, importCommand]) command.register(program);

  const vaults = program.command('vaults').description('create, list, rename, tag, delete vaults; history, diff, revert, export');
  for (const command of [vaultsCreate, vaultsList, vaultsRename, vaultsDelete, vaultsTag, vaultsLog, vaultsDiff, vaultsRevert, vaultsExport]) command.register(vaults);

  const secrets = program.command('secrets').description('set, get, list, remove, move, copy secrets');
  for (const command of [secretsSet, secretsGet, secretsLs, secretsRm, secretsMkdir, secretsStat, secretsEnv, secretsInject]) command.register(secrets);
  registerTransfer(secrets, 'mv');
  registerTransfer(secrets, 'cp');

  const agent = program.command('agent').description('the agent: unlock once, then every command is fast');
  for (const command of [agentStart, agentControl]) command.register(agent);

  completion.register(program);

  // Subcommands inherit the output settings so usage errors look the same everywhere.
  const inherit = (command: Command) => {
    for (const sub of command.commands) {
      sub.exitOverride().configureOutput({ outputError: (text, write) => write(`keynode: ${text.replace(/^error: /, '')}`) });
      inherit(sub);
    }
  };
  inherit(program);
  return program;
}

/** Run the CLI; resolves to the process exit code. */
export async function run(argv: string[]): Promise<number> {
  // `--version` belongs to `secrets get` (a past version), so the root answers it only alone.
  if (argv.length === 3 && argv[2] === '--version') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const program = buildProgram();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0; // e.g. `secrets env`: the command's status
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    return reportError(error, json);
  }
}
