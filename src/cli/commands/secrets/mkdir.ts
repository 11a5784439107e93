import type { Command } from 'commander';
import { parseSecretRef } from '../../../vaults/paths.js';
import { globalOptions, withClient } from '../../context.js';
import { emit } from '../../output.js';

export function register(secrets: Command): void {
  secrets
    .command('mkdir <vault:path>')
    .description('create an empty directory (parents too)')
    .option('-m, --message <text>', 'commit message')
    .action(async (ref: string, options: { message?: string }, command: Command) => {
      const global = globalOptions(command);
      const { vault: vaultName, path } = parseSecretRef(ref);
      const result = await withClient(global, (client) => client.call('secrets.mkdir', { vault: vaultName, path, message: options.message }));
      emit(global, { vault: vaultName, path, ...result }, result.changed ? `Created ${vaultName}:${path}/` : `${vaultName}:${path}/ already exists`);
    });
}
