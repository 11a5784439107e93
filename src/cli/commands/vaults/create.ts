import type { Command } from 'commander';
import { globalOptions, withClient } from '../../context.js';
import { emit } from '../../output.js';

export function register(vaults: Command): void {
  vaults
    .command('create <name>')
    .description('create an empty vault')
    .action(async (name: string, _options: unknown, command: Command) => {
      const global = globalOptions(command);
      const result = await withClient(global, (client) => client.call('vaults.create', { name }));
      emit(global, result, `Created vault ${name}`);
    });
}
