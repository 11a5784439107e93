import path from 'node:path';
import type { Command } from 'commander';
import { KeynodeError } from '../../../errors.js';
import { globalOptions, withClient } from '../../context.js';
import { emit } from '../../output.js';
import { confirmAction } from '../../prompt.js';

export function register(vaults: Command): void {
  vaults
    .command('export <name>')
    .description('write a vault with its whole history as a git bundle (PLAINTEXT)')
    .option('--git-bundle <file>', 'the bundle file to write (mode 0600)')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (name: string, options: { gitBundle?: string; yes?: boolean }, command: Command) => {
      const global = globalOptions(command);
      if (!options.gitBundle) throw new KeynodeError('ERR_USAGE', 'say where to write: --git-bundle FILE');
      const file = path.resolve(options.gitBundle);
      const result = await withClient(global, async (client) => {
        const { vaults } = await client.call('vaults.list', {});
        if (!vaults.some((v) => v.name === name)) throw new KeynodeError('ERR_VAULT_NOT_FOUND', `no vault named "${name}"`, { vault: name });
        await confirmAction(`Write every secret and version of "${name}" UNENCRYPTED to ${file}`, name, options.yes);
        return client.call('vaults.exportBundle', { name, file });
      });
      emit(global, { vault: name, file, ...result }, `Wrote ${file} (${result.objects} objects, plaintext). Read it with: git clone ${file}`);
    });
}
