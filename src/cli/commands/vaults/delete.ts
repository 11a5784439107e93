import type { Command } from 'commander';
import { KeynodeError } from '../../../errors.js';
import { globalOptions, withClient } from '../../context.js';
import { emit } from '../../output.js';
import { confirmAction } from '../../prompt.js';

export function register(vaults: Command): void {
  vaults
    .command('delete <name>')
    .description('delete a vault and all its history from this node')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (name: string, options: { yes?: boolean }, command: Command) => {
      const global = globalOptions(command);
      const { purged } = await withClient(global, async (client) => {
        const { vaults } = await client.call('vaults.list', {});
        if (!vaults.some((v) => v.name === name)) throw new KeynodeError('ERR_VAULT_NOT_FOUND', `no vault named "${name}"`, { vault: name });
        await confirmAction(`Delete vault "${name}" and all its history`, name, options.yes);
        return client.call('vaults.delete', { name });
      });
      emit(
        global,
        { name, deleted: true, purged },
        purged
          ? `Deleted vault ${name}`
          : `Deleted vault ${name}; its encrypted records stay in the store file until there is room to compact it (retried each time the node opens)`,
      );
    });
}
