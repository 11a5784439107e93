import type { Command } from 'commander';
import { globalOptions, withNode } from '../../context.js';
import { emit } from '../../output.js';
import { confirmAction } from '../../prompt.js';

export function register(vaults: Command): void {
  vaults
    .command('delete <name>')
    .description('delete a vault and all its history from this node')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (name: string, options: { yes?: boolean }, command: Command) => {
      const global = globalOptions(command);
      await withNode(global, async (node) => {
        if (!node.vaults.hasVault(name)) await node.vaults.openVault(name); // the not-found error, before asking
        await confirmAction(`Delete vault "${name}" and all its history`, name, options.yes);
        await node.vaults.deleteVault(name);
      });
      emit(global, { name, deleted: true }, `Deleted vault ${name}`);
    });
}
