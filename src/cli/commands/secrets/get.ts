import type { Command } from 'commander';
import { parseSecretRef } from '../../../vaults/paths.js';
import { fromBase64, globalOptions, withClient } from '../../context.js';
import { printSecretValue } from '../../format.js';

export function register(secrets: Command): void {
  secrets
    .command('get <vault:path>')
    .description('write a secret to stdout, byte for byte')
    .option('--version <commit>', 'the value at a past version (commit id or prefix, HEAD~N)')
    .action(async (ref: string, options: { version?: string }, command: Command) => {
      const global = globalOptions(command);
      const { vault: vaultName, path } = parseSecretRef(ref);
      const value = fromBase64((await withClient(global, (client) => client.call('secrets.get', { vault: vaultName, path, version: options.version }))).value);
      printSecretValue(global, { vault: vaultName, path, version: options.version }, value);
    });
}
