import type { Command } from 'commander';
import { parseSecretRef } from '../../../vaults/paths.js';
import { fromBase64, globalOptions, withClient } from '../../context.js';
import { printSecretValue } from '../../format.js';
import { emit } from '../../output.js';

export function register(secrets: Command): void {
  secrets
    .command('get <vault:path>')
    .description('write a secret to stdout, byte for byte')
    .option('--version <commit>', 'the value at a past version (commit id or prefix, HEAD~N)')
    .option('-c, --copy', 'copy to the clipboard instead of printing; cleared after 45 s')
    .action(async (ref: string, options: { version?: string; copy?: boolean }, command: Command) => {
      const global = globalOptions(command);
      const { vault: vaultName, path } = parseSecretRef(ref);
      if (!options.copy && !global.json) {
        // Raw bytes go out as they come: a value of any size in bounded memory.
        const { writeValueToStdout } = await import('../../values.js');
        await withClient(global, (client) => writeValueToStdout(client, { vault: vaultName, path, version: options.version }));
        return;
      }
      const value = fromBase64((await withClient(global, (client) => client.call('secrets.get', { vault: vaultName, path, version: options.version }))).value);
      if (options.copy) {
        const { copyToClipboard } = await import('../../clipboard.js');
        const { clearAfterSeconds } = copyToClipboard(value);
        emit(
          global,
          { vault: vaultName, path, copied: true, clearAfterSeconds },
          `Copied ${vaultName}:${path} to the clipboard; it is cleared in ${clearAfterSeconds} s`,
        );
        return;
      }
      printSecretValue(global, { vault: vaultName, path, version: options.version }, value);
    });
}
