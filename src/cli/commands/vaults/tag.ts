import type { Command } from 'commander';
import { globalOptions, withClient } from '../../context.js';
import { emit } from '../../output.js';

export function register(vaults: Command): void {
  vaults
    .command('tag <name> <tag>')
    .description('add a tag to a vault')
    .action(async (name: string, tag: string, _options: unknown, command: Command) => {
      const global = globalOptions(command);
      const summary = await withClient(global, (client) => client.call('vaults.tag', { name, tag }));
      emit(global, summary, `${name}: ${summary.tags.join(', ')}`);
    });
  vaults
    .command('untag <name> <tag>')
    .description('remove a tag from a vault')
    .action(async (name: string, tag: string, _options: unknown, command: Command) => {
      const global = globalOptions(command);
      const summary = await withClient(global, (client) => client.call('vaults.untag', { name, tag }));
      emit(global, summary, `${name}: ${summary.tags.length ? summary.tags.join(', ') : '(no tags)'}`);
    });
}
