import type { Command } from 'commander';
import { globalOptions, withClient } from '../../context.js';
import { emit } from '../../output.js';

export function register(vaults: Command): void {
  vaults
    .command('revert <name> <commit>')
    .description("restore a commit's tree as a new commit (history is never rewritten)")
    .option('-m, --message <text>', 'commit message')
    .action(async (name: string, commit: string, options: { message?: string }, command: Command) => {
      const global = globalOptions(command);
      const result = await withClient(global, (client) => client.call('vaults.revert', { name, commit, message: options.message }));
      emit(
        global,
        { vault: name, ...result },
        result.changed ? `Reverted ${name} to ${commit}: commit ${result.commit.slice(0, 12)}` : `${name} already matches ${commit}; nothing to do`,
      );
    });
}
