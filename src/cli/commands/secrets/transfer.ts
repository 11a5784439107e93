import type { Command } from 'commander';
import { parseSecretRef } from '../../../vaults/paths.js';
import { globalOptions, withClient } from '../../context.js';
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
      const result = await withClient(global, (client) =>
        client.call('secrets.transfer', { kind: verb, from: source, to: target, overwrite: options.force, message: options.message }),
      );
      emit(global, { from: source, to: target, ...result }, `${kind === 'mv' ? 'Moved' : 'Copied'} ${from} to ${to} (commit ${result.commit.slice(0, 12)})`);
    });
}

/** The command table (cli/commandTable.ts) names one register function per command. */
export const registerMv = (secrets: Command): void => registerTransfer(secrets, 'mv');
export const registerCp = (secrets: Command): void => registerTransfer(secrets, 'cp');
