import type { Command } from 'commander';
import { globalOptions, withClient } from '../context.js';
import { emit } from '../output.js';

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export function register(program: Command): void {
  program
    .command('status')
    .description('show the node id, public key, vault count and store size')
    .action(async (_options: unknown, command: Command) => {
      const global = globalOptions(command);
      const status = await withClient(global, (client) => client.call('node.status', {}));
      emit(global, status, () =>
        [
          `node id     ${status.nodeId}`,
          `public key  ${status.publicKey} (Ed25519)`,
          `node path   ${status.nodePath}`,
          `created     ${status.createdAt}`,
          `vaults      ${status.vaultCount}`,
          `store size  ${formatBytes(status.storeBytes)}`,
          ...(status.store.tornTailBytes > 0
            ? [`store tail  ${status.store.tornTailBytes} B of an interrupted, never acknowledged write (set aside by the next write)`]
            : []),
          ...(status.store.tornTailSetAsideTo ? [`set aside   ${status.store.tornTailSetAsideTo}`] : []),
        ].join('\n'),
      );
    });
}
