import type { Command } from 'commander';
import { addKdfOptions, globalOptions, kdfOptionsOf, nodePathOf, readPassword, readSecretFile } from '../context.js';
import { emit } from '../output.js';

export function register(program: Command): void {
  addKdfOptions(
    program
      .command('password')
      .description('change the node password (rewraps the key; no data is re-encrypted)')
      .option('--new-password-file <file>', 'read the new password from FILE (else KEYNODE_NEW_PASSWORD or a prompt)'),
  ).action(async (options: { newPasswordFile?: string; kdfMemory?: string; kdfIterations?: string }, command: Command) => {
    const global = globalOptions(command);
    const nodePath = nodePathOf(global);
    const password = await readPassword(global, { label: 'Current password' });
    let newPassword: string;
    if (options.newPasswordFile) newPassword = readSecretFile(options.newPasswordFile, 'new password');
    else if (process.env.KEYNODE_NEW_PASSWORD) newPassword = process.env.KEYNODE_NEW_PASSWORD;
    else newPassword = await readPassword({ ...global, passwordFile: undefined }, { confirm: true, label: 'New password' });
    const { KeynodeNode } = await import('../../node/KeynodeNode.js');
    await KeynodeNode.changePassword({ nodePath, password, newPassword, kdf: kdfOptionsOf(options) });
    emit(global, { nodePath, changed: true }, 'Password changed.');
  });
}
