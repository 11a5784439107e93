import fs from 'node:fs';
import type { Command } from 'commander';
import { KeynodeError } from '../../errors.js';
import { addKdfOptions, globalOptions, kdfOptionsOf, nodePathOf, readPassword, readSecretFile } from '../context.js';
import { emit } from '../output.js';
import { canPrompt, promptLine } from '../prompt.js';

async function readPhrase(options: { phraseFile?: string }): Promise<string> {
  if (options.phraseFile) return readSecretFile(options.phraseFile, 'recovery phrase').toString('utf8');
  const fromEnv = process.env.KEYNODE_RECOVERY_PHRASE;
  if (fromEnv) return fromEnv;
  if (!process.stdin.isTTY) return fs.readFileSync(0, 'utf8');
  if (canPrompt()) return promptLine('Recovery phrase (24 words): ', { hidden: true });
  throw new KeynodeError('ERR_USAGE', 'give the recovery phrase with --phrase-file, KEYNODE_RECOVERY_PHRASE or on stdin');
}

export function register(program: Command): void {
  addKdfOptions(
    program
      .command('recover')
      .description('rebuild a node identity from its 24-word recovery phrase, with a new password')
      .option('--phrase-file <file>', 'read the recovery phrase from FILE (else KEYNODE_RECOVERY_PHRASE, stdin or a prompt)'),
  ).action(async (options: { phraseFile?: string; kdfMemory?: string; kdfIterations?: string }, command: Command) => {
    const global = globalOptions(command);
    const nodePath = nodePathOf(global);
    const recoveryPhrase = await readPhrase(options);
    const password = await readPassword(global, { confirm: true, label: 'New node password' });
    const { KeynodeNode } = await import('../../node/KeynodeNode.js');
    let result;
    try {
      result = await KeynodeNode.recover({ nodePath, recoveryPhrase, password, kdf: kdfOptionsOf(options) });
    } finally {
      password.fill(0);
    }
    emit(global, { nodeId: result.nodeId, nodePath, existing: result.existing }, () =>
      result.existing
        ? `Recovered node ${result.nodeId} at ${nodePath}: the new password is set, its vaults are unchanged.`
        : `Rebuilt node ${result.nodeId} at ${nodePath} (a new, empty store with the recovered identity).`,
    );
  });
}
