import type { Command } from 'commander';
import { addKdfOptions, globalOptions, kdfOptionsOf, nodePathOf, readPassword } from '../context.js';
import { emit, note } from '../output.js';

export function register(program: Command): void {
  addKdfOptions(program.command('init').description('create a node: identity key pair and encrypted store')).action(
    async (options: { kdfMemory?: string; kdfIterations?: string }, command: Command) => {
      const global = globalOptions(command);
      const nodePath = nodePathOf(global, { warnIfExposed: false }); // create() makes it 0700
      const kdf = kdfOptionsOf(options);
      const { KeynodeNode, DEFAULT_KDF } = await import('../../node/KeynodeNode.js');
      const password = await readPassword(global, { confirm: true });
      let created;
      try {
        created = await KeynodeNode.create({ nodePath, password, kdf });
      } finally {
        password.fill(0);
      }
      const { node, recoveryPhrase } = created;
      const nodeId = node.nodeId;
      node.close();
      if ((kdf.memoryKib ?? DEFAULT_KDF.memoryKib) < DEFAULT_KDF.memoryKib || (kdf.iterations ?? DEFAULT_KDF.iterations) < DEFAULT_KDF.iterations) {
        note(global, 'warning: argon2id parameters are below the defaults; the password is easier to brute-force');
      }
      emit(global, { nodeId, nodePath, recoveryPhrase }, () =>
        [
          `Created node ${nodeId}`,
          `  at ${nodePath}`,
          '',
          'Recovery phrase (shown once; write it down and keep it offline):',
          '',
          `  ${recoveryPhrase}`,
          '',
          'Anyone with this phrase can rebuild this node and read its secrets.',
        ].join('\n'),
      );
    },
  );
}
