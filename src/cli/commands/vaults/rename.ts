import type { Command } from 'commander';
import { globalOptions, withClient } from '../../context.js';
import { emit } from '../../output.js';

export function register(vaults: Command): void {
  vaults
    .command('rename <name> <new-name>')
    .description('rename a vault (its history is unchanged)')
    .action(async (name: string, newName: string, _options: unknown, command: Command) => {
      const global = globalOptions(command);
      const result = await withClient(global, (client) => client.call('vaults.rename', { name, newName }));
      emit(global, result, `Renamed vault ${name} to ${newName}`);
    });
}
