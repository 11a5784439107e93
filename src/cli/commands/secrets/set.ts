import type { Command } from 'commander';
import { KeynodeError, isKeynodeError } from '../../../errors.js';
import { parseSecretRef } from '../../../vaults/paths.js';
import { fromBase64, globalOptions, parseInteger, withClient } from '../../context.js';
import { printSaved } from '../../format.js';
import { canPrompt, promptNewSecret } from '../../prompt.js';

interface SetOptions {
  file?: string;
  edit?: boolean;
  generate?: boolean;
  length?: string;
  charset?: string;
  words?: string;
  message?: string;
}

export function register(secrets: Command): void {
  secrets
    .command('set <vault:path>')
    .description('store a secret from stdin, a file, $EDITOR or a generator (a new commit)')
    .option('--file <file>', 'read the value from FILE (exact bytes)')
    .option('--edit', 'write the value in $EDITOR (held in memory-backed storage only)')
    .option('--generate', 'generate a random value')
    .option('--length <n>', 'generated length in characters (default 32)')
    .option('--charset <set>', 'alnum (default), alpha, lower, upper, digits, hex, ascii, or literal characters')
    .option('--words <n>', 'generate a passphrase of N words instead')
    .option('-m, --message <text>', 'commit message')
    .action(async (ref: string, options: SetOptions, command: Command) => {
      const global = globalOptions(command);
      const { vault: vaultName, path } = parseSecretRef(ref);
      const sources = [options.file !== undefined, options.edit === true, options.generate === true].filter(Boolean).length;
      if (sources > 1) throw new KeynodeError('ERR_USAGE', 'use one of --file, --edit and --generate');
      if (!options.generate && (options.length || options.charset || options.words)) {
        throw new KeynodeError('ERR_USAGE', '--length, --charset and --words go with --generate');
      }
      let value: Buffer | undefined;
      const streamed = options.file !== undefined || (!options.generate && !options.edit && !(process.stdin.isTTY && canPrompt()));
      if (streamed) {
        // A file or stdin: streamed, so its size is bounded by the disk, not by memory.
        const { openValueFile, setValue, stdinValue } = await import('../../values.js');
        const input = options.file !== undefined ? await openValueFile(options.file) : stdinValue();
        const { bytes, result } = await withClient(global, (client) => setValue(client, { vault: vaultName, path, message: options.message }, input));
        printSaved(global, { vault: vaultName, path }, bytes, result);
        return;
      }
      if (options.generate) {
        const { generateSecret } = await import('../../../vaults/generateSecret.js');
        value = Buffer.from(
          generateSecret({
            length: options.length === undefined ? undefined : parseInteger(options.length, '--length'),
            charset: options.charset,
            words: options.words === undefined ? undefined : parseInteger(options.words, '--words'),
          }),
        );
      } else if (!options.edit) {
        value = Buffer.from(await promptNewSecret(`Value for ${vaultName}:${path}`));
      }
      const result = await withClient(global, async (client) => {
        if (options.edit) {
          const { editInEditor } = await import('../../editor.js');
          const current = await client.call('secrets.get', { vault: vaultName, path }).then(
            (r) => fromBase64(r.value),
            (error: unknown) => {
              if (isKeynodeError(error, 'ERR_SECRET_NOT_FOUND')) return undefined;
              throw error;
            },
          );
          value = await editInEditor(current);
        }
        return client.call('secrets.set', { vault: vaultName, path, value: value!.toString('base64'), message: options.message });
      });
      printSaved(global, { vault: vaultName, path }, value!.length, result);
    });
}
