import type { Command } from 'commander';
import { KeynodeError } from '../../errors.js';

/**
 * Shell completion scripts, generated from the command tree itself, so they never drift from
 * the commands. Completes commands, subcommands and options; vault names are not completed
 * (that would need the node unlocked).
 */
interface Node {
  path: string[];
  commands: string[];
  options: string[];
}

function walk(command: Command, path: string[], out: Node[]): void {
  const options = command.options.filter((o) => !o.hidden).flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)));
  out.push({ path, commands: command.commands.map((c) => c.name()), options: [...options, '--help'] });
  for (const sub of command.commands) walk(sub, [...path, sub.name()], out);
}

/** Shell `case` arms: which command path the words typed so far lead to (bash and zsh share it). */
function pathArms(nodes: Node[]): string {
  return nodes
    .filter((n) => n.path.length > 0)
    .map((n) => `      "${n.path.join(' ')}") cmdpath="${n.path.join(' ')}" ;;`)
    .join('\n');
}

/** Shell `case` arms: the words to offer at each command path. */
function choiceArms(nodes: Node[], globals: string[], assign: (words: string) => string): string {
  return nodes.map((n) => `    "${n.path.join(' ')}") ${assign([...n.commands, ...n.options, ...(n.path.length ? globals : [])].join(' '))} ;;`).join('\n');
}

function bash(nodes: Node[], globals: string[]): string {
  return `# keynode bash completion: eval "$(keynode completion bash)"
_keynode() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path="" word i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=\${COMP_WORDS[i]}
    [[ $word == -* ]] && continue
    case "$cmdpath\${cmdpath:+ }$word" in
${pathArms(nodes)}
    esac
  done
  local words=""
  case "$cmdpath" in
${choiceArms(nodes, globals, (words) => `words="${words}"`)}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _keynode keynode
`;
}

function zsh(nodes: Node[], globals: string[]): string {
  return `#compdef keynode
# keynode zsh completion: eval "$(keynode completion zsh)"
_keynode() {
  local cmdpath="" word i
  for ((i = 2; i < CURRENT; i++)); do
    word=\${words[i]}
    [[ $word == -* ]] && continue
    case "$cmdpath\${cmdpath:+ }$word" in
${pathArms(nodes)}
    esac
  done
  local -a choices
  case "$cmdpath" in
${choiceArms(nodes, globals, (words) => `choices=(${words})`)}
  esac
  compadd -- $choices
}
compdef _keynode keynode
`;
}

function fish(nodes: Node[]): string {
  const lines = ['# keynode fish completion: keynode completion fish | source', 'complete -c keynode -f'];
  for (const n of nodes) {
    const condition =
      n.path.length === 0
        ? '__fish_use_subcommand'
        : `__fish_seen_subcommand_from ${n.path[n.path.length - 1]!}${n.path.length > 1 ? `; and __fish_seen_subcommand_from ${n.path[0]!}` : ''}`;
    for (const sub of n.commands) lines.push(`complete -c keynode -n '${condition}' -a ${sub}`);
    for (const option of n.options) {
      if (option.startsWith('--')) lines.push(`complete -c keynode -n '${condition}' -l ${option.slice(2)}`);
    }
  }
  return lines.join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('completion <shell>')
    .description('print a shell completion script: bash, zsh or fish')
    .action((shell: string) => {
      const nodes: Node[] = [];
      walk(program, [], nodes);
      const globals = nodes[0]!.options.filter((o) => o !== '--help' && o !== '-V');
      if (shell === 'bash') process.stdout.write(bash(nodes, globals));
      else if (shell === 'zsh') process.stdout.write(zsh(nodes, globals));
      else if (shell === 'fish') process.stdout.write(fish(nodes));
      else throw new KeynodeError('ERR_USAGE', `no completion for "${shell}" (bash, zsh or fish)`);
    });
}
