import type { Command } from 'commander';
import { parseSecretRef } from '../../../vaults/paths.js';
import { globalOptions, withClient } from '../../context.js';
import { emit } from '../../output.js';

export function register(secrets: Command): void {
  secrets
    .command('rm <vault:path>')
    .description('remove a secret (or a directory with -r); earlier versions stay in history')
    .option('-r, --recursive', 'remove a directory and everything under it')
    .option('-m, --message <text>', 'commit message')
    .action(async (ref: string, options: { recursive?: boolean; message?: string }, command: Command) => {
      const global = globalOptions(command);
      const { vault: vaultName, path } = parseSecretRef(ref);
      const result = await withClient(global, (client) =>
        client.call('secrets.rm', { vault: vaultName, path, recursive: options.recursive, message: options.message }),
      );
      emit(global, { vault: vaultName, path, ...result }, `Removed ${vaultName}:${path} (commit ${result.commit.slice(0, 12)})`);
    });
}
