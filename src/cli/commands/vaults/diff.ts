import type { Command } from 'commander';
import { globalOptions, withNode } from '../../context.js';
import { emit } from '../../output.js';

const MARK = { added: '+', removed: '-', modified: '~' } as const;

function show(value: Buffer | undefined): string {
  if (value === undefined) return '';
  const text = value.toString('utf8');
  return Buffer.from(text, 'utf8').equals(value) ? JSON.stringify(text) : `base64:${value.toString('base64')}`;
}

export function register(vaults: Command): void {
  vaults
    .command('diff <name> <from> [to]')
    .description('what changed between two versions (commit ids, HEAD, HEAD~N; to defaults to HEAD)')
    .option('--show-values', 'include the secret values before and after')
    .action(async (name: string, from: string, to: string | undefined, options: { showValues?: boolean }, command: Command) => {
      const global = globalOptions(command);
      const changes = await withNode(global, async (node) =>
        (await node.vaults.openVault(name)).diff(from, to ?? 'HEAD', { values: options.showValues ?? false }),
      );
      const json = changes.map((c) => ({
        path: c.path,
        status: c.status,
        ...(options.showValues ? { before: c.before?.toString('base64') ?? null, after: c.after?.toString('base64') ?? null } : {}),
      }));
      emit(global, { vault: name, from, to: to ?? 'HEAD', changes: json }, () =>
        changes
          .map((c) => {
            const line = `${MARK[c.status]} ${c.path}`;
            if (!options.showValues) return line;
            return `${line}\n    before: ${show(c.before)}\n    after:  ${show(c.after)}`;
          })
          .join('\n'),
      );
    });
}
