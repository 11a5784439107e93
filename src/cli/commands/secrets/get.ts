import type { Command } from 'commander';
import { parseSecretRef } from '../../../vaults/paths.js';
import { fromBase64, globalOptions, withClient } from '../../context.js';

export function register(secrets: Command): void {
  secrets
    .command('get <vault:path>')
    .description('write a secret to stdout, byte for byte')
    .option('--version <commit>', 'the value at a past version (commit id or prefix, HEAD~N)')
    .action(async (ref: string, options: { version?: string }, command: Command) => {
      const global = globalOptions(command);
      const { vault: vaultName, path } = parseSecretRef(ref);
      const value = fromBase64((await withClient(global, (client) => client.call('secrets.get', { vault: vaultName, path, version: options.version }))).value);
      if (global.json) {
        const text = value.toString('utf8');
        const utf8 = Buffer.from(text, 'utf8').equals(value);
        process.stdout.write(
          JSON.stringify({ vault: vaultName, path, version: options.version ?? 'HEAD', encoding: utf8 ? 'utf8' : 'base64', value: utf8 ? text : value.toString('base64') }) + '\n',
        );
        return;
      }
      process.stdout.write(value);
    });
}
