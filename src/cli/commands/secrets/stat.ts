import type { Command } from 'commander';
import { parseSecretRef } from '../../../vaults/paths.js';
import { globalOptions, withClient } from '../../context.js';
import { emit } from '../../output.js';

export function register(secrets: Command): void {
  secrets
    .command('stat <vault:path>')
    .description('type, size and last change of a secret or directory')
    .action(async (ref: string, _options: unknown, command: Command) => {
      const global = globalOptions(command);
      const { vault: vaultName, path } = parseSecretRef(ref, { allowRoot: true });
      const stat = await withClient(global, (client) => client.call('secrets.stat', { vault: vaultName, path }));
      emit(global, { vault: vaultName, ...stat }, () =>
        [
          `path      ${vaultName}:${stat.path}`,
          `type      ${stat.type}`,
          `size      ${stat.size} ${stat.type === 'secret' ? 'bytes' : 'entries'}`,
          `modified  ${stat.modified ? `${stat.modified.time} (commit ${stat.modified.commit.slice(0, 12)}: ${stat.modified.message})` : '-'}`,
        ].join('\n'),
      );
    });
}
