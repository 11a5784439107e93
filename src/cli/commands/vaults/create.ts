import type { Command } from 'commander';
import { globalOptions, withNode } from '../../context.js';
import { emit } from '../../output.js';

export function register(vaults: Command): void {
  vaults
    .command('create <name>')
    .description('create an empty vault')
    .action(async (name: string, _options: unknown, command: Command) => {
      const global = globalOptions(command);
      const commit = await withNode(global, async (node) => (await node.vaults.createVault(name)).headCommit);
      emit(global, { name, commit }, `Created vault ${name}`);
    });
}
