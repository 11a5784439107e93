import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { reportError } from './output.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** What a command module gives the tree: it adds its command(s) to a parent. */
type Register = (parent: Command) => void;

/**
 * The command tree as a table: which module registers which command names, in help order.
 * A module loads only when its command runs (or for help and completion, which show them all):
 * importing every module cost ~60 ms of a ~95 ms `vaults list`.
 */
interface CommandEntry {
  group?: 'vaults' | 'secrets' | 'agent';
  names: readonly string[];
  load: () => Promise<Register>;
}

const registerOf = (module: Promise<{ register: Register }>) => module.then((m) => m.register);
const transfer = (kind: 'mv' | 'cp') => () => import('./commands/secrets/transfer.js').then((m): Register => (secrets) => m.registerTransfer(secrets, kind));

export const COMMANDS: readonly CommandEntry[] = [
  { names: ['init'], load: () => registerOf(import('./commands/init.js')) },
  { names: ['recover'], load: () => registerOf(import('./commands/recover.js')) },
  { names: ['password'], load: () => registerOf(import('./commands/password.js')) },
  { names: ['status'], load: () => registerOf(import('./commands/status.js')) },
  { names: ['check'], load: () => registerOf(import('./commands/check.js')) },
  { names: ['import'], load: () => registerOf(import('./commands/import.js')) },
  { group: 'vaults', names: ['create'], load: () => registerOf(import('./commands/vaults/create.js')) },
  { group: 'vaults', names: ['list', 'ls'], load: () => registerOf(import('./commands/vaults/list.js')) },
  { group: 'vaults', names: ['rename'], load: () => registerOf(import('./commands/vaults/rename.js')) },
  { group: 'vaults', names: ['delete'], load: () => registerOf(import('./commands/vaults/delete.js')) },
  { group: 'vaults', names: ['tag', 'untag'], load: () => registerOf(import('./commands/vaults/tag.js')) },
  { group: 'vaults', names: ['log'], load: () => registerOf(import('./commands/vaults/log.js')) },
  { group: 'vaults', names: ['diff'], load: () => registerOf(import('./commands/vaults/diff.js')) },
  { group: 'vaults', names: ['revert'], load: () => registerOf(import('./commands/vaults/revert.js')) },
  { group: 'vaults', names: ['export'], load: () => registerOf(import('./commands/vaults/export.js')) },
  { group: 'secrets', names: ['set'], load: () => registerOf(import('./commands/secrets/set.js')) },
  { group: 'secrets', names: ['get'], load: () => registerOf(import('./commands/secrets/get.js')) },
  { group: 'secrets', names: ['ls'], load: () => registerOf(import('./commands/secrets/ls.js')) },
  { group: 'secrets', names: ['rm'], load: () => registerOf(import('./commands/secrets/rm.js')) },
  { group: 'secrets', names: ['mkdir'], load: () => registerOf(import('./commands/secrets/mkdir.js')) },
  { group: 'secrets', names: ['stat'], load: () => registerOf(import('./commands/secrets/stat.js')) },
  { group: 'secrets', names: ['env'], load: () => registerOf(import('./commands/secrets/env.js')) },
  { group: 'secrets', names: ['inject'], load: () => registerOf(import('./commands/secrets/inject.js')) },
  { group: 'secrets', names: ['mv'], load: transfer('mv') },
  { group: 'secrets', names: ['cp'], load: transfer('cp') },
  { group: 'agent', names: ['start'], load: () => registerOf(import('./commands/agent/start.js')) },
  { group: 'agent', names: ['status', 'stop', 'lock', 'unlock'], load: () => registerOf(import('./commands/agent/control.js')) },
  // Completion walks the whole tree, so asking for it loads every module (see commandsFor).
  { names: ['completion'], load: () => registerOf(import('./commands/completion.js')) },
];

const GROUP_DESCRIPTIONS = {
  vaults: 'create, list, rename, tag, delete vaults; history, diff, revert, export',
  secrets: 'set, get, list, remove, move, copy secrets',
  agent: 'the agent: unlock once, then every command is fast',
} as const;

/** Options of the program itself that take a value (the routing below skips their values). */
const GLOBAL_VALUE_OPTIONS = new Set(['--node-path', '--password-file', '--lock-timeout']);

/**
 * The one entry that `args` (argv without node and script) runs, or undefined when the words
 * do not plainly name one (help, completion, a typo, an option commander would have to
 * interpret first): then the whole tree loads and commander decides, so errors, suggestions
 * and help read exactly as they always did.
 */
export function commandFor(args: readonly string[]): CommandEntry | undefined {
  const words: string[] = [];
  for (let i = 0; i < args.length && words.length < 2; i++) {
    const arg = args[i]!;
    if (GLOBAL_VALUE_OPTIONS.has(arg)) i++;
    else if (arg === '--json' || (arg.includes('=') && GLOBAL_VALUE_OPTIONS.has(arg.slice(0, arg.indexOf('='))))) continue;
    else if (arg.startsWith('-')) return undefined;
    else words.push(arg);
  }
  const [first, second] = words;
  if (first === 'vaults' || first === 'secrets' || first === 'agent') return COMMANDS.find((c) => c.group === first && second !== undefined && c.names.includes(second));
  if (first === 'completion') return undefined;
  return COMMANDS.find((c) => c.group === undefined && first !== undefined && c.names.includes(first));
}

/** The program with the commands of `entries` (all of them unless given), in help order. */
export async function buildProgram(entries: readonly CommandEntry[] = COMMANDS): Promise<Command> {
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

  const registers = await Promise.all(entries.map((entry) => entry.load()));
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

/** Run the CLI; resolves to the process exit code. */
export async function run(argv: string[]): Promise<number> {
  // `--version` belongs to `secrets get` (a past version), so the root answers it only alone.
  if (argv.length === 3 && argv[2] === '--version') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const json = argv.includes('--json');
  try {
    const entry = commandFor(argv.slice(2));
    const program = await buildProgram(entry ? [entry] : COMMANDS);
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0; // e.g. `secrets env`: the command's status
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    return reportError(error, json);
  }
}
