import type { Command } from 'commander';
import { globalOptions, withNode } from '../../context.js';
import { emit } from '../../output.js';

export function register(vaults: Command): void {
  vaults
    .command('list')
    .alias('ls')
    .description('list vaults')
    .option('--tag <tag>', 'only vaults with this tag')
    .action(async (options: { tag?: string }, command: Command) => {
      const global = globalOptions(command);
      const list = await withNode(global, async (node) => node.vaults.listVaults({ tag: options.tag }));
      emit(global, { vaults: list }, () => list.map((v) => (v.tags.length ? `${v.name}  [${v.tags.join(', ')}]` : v.name)).join('\n'));
    });
}
