import type { Command } from 'commander';
import { globalOptions, withNode } from '../../context.js';
import { emit } from '../../output.js';

export function register(vaults: Command): void {
  vaults
    .command('rename <name> <new-name>')
    .description('rename a vault (its history is unchanged)')
    .action(async (name: string, newName: string, _options: unknown, command: Command) => {
      const global = globalOptions(command);
      await withNode(global, async (node) => node.vaults.renameVault(name, newName));
      emit(global, { name: newName, previousName: name }, `Renamed vault ${name} to ${newName}`);
    });
}
