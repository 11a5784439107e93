import type { Command } from 'commander';
import { globalOptions, withClient } from '../../context.js';
import { emit } from '../../output.js';

export function register(vaults: Command): void {
  vaults
    .command('list')
    .alias('ls')
    .description('list vaults')
    .option('--tag <tag>', 'only vaults with this tag')
    .action(async (options: { tag?: string }, command: Command) => {
      const global = globalOptions(command);
      const { vaults: list } = await withClient(global, (client) => client.call('vaults.list', { tag: options.tag }));
      emit(global, { vaults: list }, () => list.map((v) => (v.tags.length ? `${v.name}  [${v.tags.join(', ')}]` : v.name)).join('\n'));
    });
}
