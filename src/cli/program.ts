import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { COMMANDS, commandFor, type CommandEntry } from './commandTable.js';
import { reportError } from './output.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

export { COMMANDS, commandFor, type CommandEntry } from './commandTable.js';

/** What a command module gives the tree: it adds its command(s) to a parent. */
export type Register = (parent: Command) => void;

/** Where the register function of an entry comes from (each CommonJS bundle passes its own). */
export type LoadCommand = (entry: CommandEntry) => Promise<Register>;

/**
 * The ES module tree (tsc's output, tests): import the command's module. The specifier is a
 * variable so that a bundler does not pull every command into each bundle of program.js.
 */
export const importCommand: LoadCommand = async (entry) => {
  const specifier = `./commands/${entry.module}.js`;
  const module = (await import(specifier)) as Record<string, Register>;
  return module[entry.register ?? 'register']!;
};

const GROUP_DESCRIPTIONS = {
  vaults: 'create, list, rename, tag, delete vaults; history, diff, revert, export',
  secrets: 'set, get, list, remove, move, copy secrets',
  agent: 'the agent: unlock once, then every command is fast',
} as const;

/** The program with the commands of `entries` (all of them unless given), in help order. */
export async function buildProgram(entries: readonly CommandEntry[] = COMMANDS, load: LoadCommand = importCommand): Promise<Command> {
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

  const registers = await Promise.all(entries.map(load));
  const groups = new Map<string, Command>();
  entries.forEach((entry, index) => {
    let parent = program;
    if (entry.group) {
      parent = groups.get(entry.group) ?? program.command(entry.group).description(GROUP_DESCRIPTIONS[entry.group]);
      groups.set(entry.group, parent);
    }
    registers[index]!(parent);
  });

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

/** Run the CLI (main.ts answers a lone `--version` first); resolves to the process exit code. */
export async function run(argv: string[], load: LoadCommand = importCommand): Promise<number> {
  const json = argv.includes('--json');
  try {
    const entry = commandFor(argv.slice(2));
    const program = await buildProgram(entry ? [entry] : COMMANDS, load);
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0; // e.g. `secrets env`: the command's status
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    return reportError(error, json);
  }
}
