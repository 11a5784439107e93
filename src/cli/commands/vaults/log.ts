import type { Command } from 'commander';
import { globalOptions, parseInteger, withClient } from '../../context.js';
import { emitList } from '../../output.js';

export function register(vaults: Command): void {
  vaults
    .command('log <name>')
    .description('show the history of a vault, newest first')
    .option('--path <path>', 'only commits that changed this secret or directory')
    .option('-n, --limit <n>', 'at most N commits')
    .action(async (name: string, options: { path?: string; limit?: string }, command: Command) => {
      const global = globalOptions(command);
      const limit = options.limit === undefined ? undefined : parseInteger(options.limit, '--limit');
      await withClient(global, (client) =>
        emitList(
          global,
          { vault: name },
          'commits',
          client.stream('vaults.log', { name, path: options.path, limit }),
          (c) => `${c.commit.slice(0, 12)}  ${c.time}  ${c.message}`,
        ),
      );
    });
}
