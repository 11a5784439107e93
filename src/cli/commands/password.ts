import type { Command } from 'commander';
import { KeynodeError } from '../../errors.js';
import { addKdfOptions, globalOptions, kdfOptionsOf, nodePathOf, readPassword, readSecretFile } from '../context.js';
import { emit } from '../output.js';
import { canPrompt, promptNewSecret } from '../prompt.js';

/**
 * The new password: --new-password-file, else KEYNODE_NEW_PASSWORD, else asked twice. Never
 * KEYNODE_PASSWORD or --password-file: those hold the current one, and "changing" to it would
 * report a change that did not happen.
 */
async function readNewPassword(options: { newPasswordFile?: string }): Promise<Buffer> {
  if (options.newPasswordFile) return readSecretFile(options.newPasswordFile, 'new password');
  const fromEnv = process.env.KEYNODE_NEW_PASSWORD;
  if (fromEnv !== undefined && fromEnv !== '') return Buffer.from(fromEnv, 'utf8');
  if (canPrompt()) return Buffer.from(await promptNewSecret('New password'), 'utf8');
  throw new KeynodeError('ERR_PASSWORD_REQUIRED', 'a new password is needed: use --new-password-file FILE or KEYNODE_NEW_PASSWORD, or run in a terminal');
}

export function register(program: Command): void {
  addKdfOptions(
    program
      .command('password')
      .description('change the node password (rewraps the key; no data is re-encrypted)')
      .option('--new-password-file <file>', 'read the new password from FILE (else KEYNODE_NEW_PASSWORD or a prompt)'),
  ).action(async (options: { newPasswordFile?: string; kdfMemory?: string; kdfIterations?: string }, command: Command) => {
    const global = globalOptions(command);
    const nodePath = nodePathOf(global);
    const kdf = kdfOptionsOf(options);
    const password = await readPassword(global, { label: 'Current password' });
    let newPassword: Buffer | undefined;
    let samePassword: boolean;
    try {
      newPassword = await readNewPassword(options);
      samePassword = newPassword.equals(password);
      // The same password is only a change when the key is rewrapped with other argon2id parameters.
      if (samePassword && Object.keys(kdf).length === 0) {
        throw new KeynodeError('ERR_INVALID_ARGUMENT', 'the new password is the same as the current one; nothing was changed');
      }
      const { KeynodeNode } = await import('../../node/KeynodeNode.js');
      await KeynodeNode.changePassword({ nodePath, password, newPassword, kdf });
    } finally {
      password.fill(0);
      newPassword?.fill(0);
    }
    emit(
      global,
      { nodePath, changed: !samePassword, kdfChanged: Object.keys(kdf).length > 0 },
      samePassword ? 'Password unchanged; the key is rewrapped with the new argon2id parameters.' : 'Password changed.',
    );
  });
}
