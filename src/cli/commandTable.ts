/**
 * Which module registers which command, in help order, and which one the words of argv name.
 * Kept apart from program.ts (and free of commander) because the CLI entry bundle routes with
 * it before anything else loads: each command runs from its own CommonJS bundle
 * (dist/cli/bundles/, scripts/postbuild.mjs), the whole tree only for help, completion and
 * anything commander must interpret first.
 */
export interface CommandEntry {
  group?: 'vaults' | 'secrets' | 'agent';
  names: readonly string[];
  /** The module under cli/commands/, without extension. */
  module: string;
  /** Its function that adds the command(s) to a parent (default `register`). */
  register?: string;
}

export const COMMANDS: readonly CommandEntry[] = [
  { names: ['init'], module: 'init' },
  { names: ['recover'], module: 'recover' },
  { names: ['password'], module: 'password' },
  { names: ['status'], module: 'status' },
  { names: ['check'], module: 'check' },
  { names: ['import'], module: 'import' },
  { group: 'vaults', names: ['create'], module: 'vaults/create' },
  { group: 'vaults', names: ['list', 'ls'], module: 'vaults/list' },
  { group: 'vaults', names: ['rename'], module: 'vaults/rename' },
  { group: 'vaults', names: ['delete'], module: 'vaults/delete' },
  { group: 'vaults', names: ['tag', 'untag'], module: 'vaults/tag' },
  { group: 'vaults', names: ['log'], module: 'vaults/log' },
  { group: 'vaults', names: ['diff'], module: 'vaults/diff' },
  { group: 'vaults', names: ['revert'], module: 'vaults/revert' },
  { group: 'vaults', names: ['export'], module: 'vaults/export' },
  { group: 'secrets', names: ['set'], module: 'secrets/set' },
  { group: 'secrets', names: ['get'], module: 'secrets/get' },
  { group: 'secrets', names: ['ls'], module: 'secrets/ls' },
  { group: 'secrets', names: ['rm'], module: 'secrets/rm' },
  { group: 'secrets', names: ['mkdir'], module: 'secrets/mkdir' },
  { group: 'secrets', names: ['stat'], module: 'secrets/stat' },
  { group: 'secrets', names: ['env'], module: 'secrets/env' },
  { group: 'secrets', names: ['inject'], module: 'secrets/inject' },
  { group: 'secrets', names: ['mv'], module: 'secrets/transfer', register: 'registerMv' },
  { group: 'secrets', names: ['cp'], module: 'secrets/transfer', register: 'registerCp' },
  { group: 'agent', names: ['start'], module: 'agent/start' },
  { group: 'agent', names: ['status', 'stop', 'lock', 'unlock'], module: 'agent/control' },
  // Completion walks the whole tree, so asking for it loads every module (see commandFor).
  { names: ['completion'], module: 'completion' },
];

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
  if (first === 'vaults' || first === 'secrets' || first === 'agent')
    return COMMANDS.find((c) => c.group === first && second !== undefined && c.names.includes(second));
  if (first === 'completion') return undefined;
  return COMMANDS.find((c) => c.group === undefined && first !== undefined && c.names.includes(first));
}

/** The bundle (dist/cli/bundles/NAME.cjs) that runs `entry`: one per module; `all` is the whole tree. */
export function bundleOf(entry: CommandEntry | undefined): string {
  return entry ? entry.module.replaceAll('/', '-') : 'all';
}
