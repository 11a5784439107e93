import type { Command } from 'commander';
import { parseSecretRef } from '../../../vaults/paths.js';
import { globalOptions, withNode } from '../../context.js';
import { emit } from '../../output.js';

/** mv and cp share everything but the verb; both work within a vault or across vaults. */
export function registerTransfer(secrets: Command, kind: 'mv' | 'cp'): void {
  const verb = kind === 'mv' ? 'move' : 'copy';
  secrets
    .command(`${kind} <from> <to>`)
    .description(`${verb} a secret or directory (VAULT:PATH; into TO when it is a directory)`)
    .option('-f, --force', 'replace an existing secret at the destination')
    .option('-m, --message <text>', 'commit message')
    .action(async (from: string, to: string, options: { force?: boolean; message?: string }, command: Command) => {
      const global = globalOptions(command);
      const source = parseSecretRef(from);
      const target = parseSecretRef(to, { allowRoot: true });
      const result = await withNode(global, async (node) => {
        const sourceVault = await node.vaults.openVault(source.vault);
        if (source.vault === target.vault) {
          const options2 = { overwrite: options.force, message: options.message };
          const write = kind === 'mv' ? await sourceVault.move(source.path, target.path, options2) : await sourceVault.copy(source.path, target.path, options2);
          return { commit: write.commit, changed: write.changed };
        }
        const { copyBetweenVaults } = await import('../../../vaults/transfer.js');
        const targetVault = await node.vaults.openVault(target.vault);
        const done = await copyBetweenVaults(sourceVault, source.path, targetVault, target.path, { overwrite: options.force, move: kind === 'mv' });
        return { commit: done.target.commit, changed: done.target.changed };
      });
      emit(global, { from: source, to: target, ...result }, `${kind === 'mv' ? 'Moved' : 'Copied'} ${from} to ${to} (commit ${result.commit.slice(0, 12)})`);
    });
}
