import fs from 'node:fs';
import type { Command } from 'commander';
import { KeynodeError, fromSystemError, isKeynodeError } from '../../errors.js';
import { parseDotenv } from '../../formats/dotenv.js';
import { fromJsonSecrets, parseJsonText } from '../../formats/jsonSecrets.js';
import { joinPath, normalizeSecretPath, validateVaultName } from '../../vaults/paths.js';
import { childEnv, globalOptions, withClient } from '../context.js';
import { emit } from '../output.js';

interface ImportOptions {
  vault: string;
  prefix?: string;
  store?: string;
  message?: string;
}

function readInput(file: string | undefined, format: string): string {
  if (!file) throw new KeynodeError('ERR_USAGE', `keynode import ${format} FILE (or - for stdin)`);
  try {
    return fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw fromSystemError(error, `reading ${file}`);
  }
}

/**
 * Refuse, before anything is created, an import that names a secret twice (one value would be
 * lost without a word) or uses a name as both a secret and a directory.
 */
function refuseConflicts(paths: string[]): void {
  const seen = new Set<string>();
  for (const path of paths) {
    if (seen.has(path)) throw new KeynodeError('ERR_INVALID_ARGUMENT', `the input names the secret "${path}" twice; nothing was imported`, { path });
    seen.add(path);
  }
  for (const path of paths) {
    for (let slash = path.indexOf('/'); slash >= 0; slash = path.indexOf('/', slash + 1)) {
      const directory = path.slice(0, slash);
      if (seen.has(directory)) {
        throw new KeynodeError(
          'ERR_INVALID_ARGUMENT',
          `the input uses "${directory}" both as a secret and as a directory (of "${path}"); nothing was imported`,
          { path },
        );
      }
    }
  }
}

export function register(program: Command): void {
  program
    .command('import <format> [file]')
    .description('import secrets into a vault (one commit): dotenv FILE, json FILE, or pass [--store DIR]')
    .requiredOption('--vault <name>', 'the vault to import into (created if missing)')
    .option('--prefix <dir>', 'put the imported secrets under this directory')
    .option('--store <dir>', 'pass: the password store (default $PASSWORD_STORE_DIR or ~/.password-store)')
    .option('-m, --message <text>', 'commit message')
    .action(async (format: string, file: string | undefined, options: ImportOptions, command: Command) => {
      const global = globalOptions(command);
      validateVaultName(options.vault);
      const prefix = options.prefix === undefined ? '' : normalizeSecretPath(options.prefix);
      let entries: Array<{ path: string; value: Buffer }>;
      let skipped: Array<{ path: string; reason: string }> = [];
      if (format === 'dotenv') {
        entries = parseDotenv(readInput(file, format)).map(({ name, value }) => ({ path: name, value: Buffer.from(value, 'utf8') }));
      } else if (format === 'json') {
        entries = fromJsonSecrets(parseJsonText(readInput(file, format)));
      } else if (format === 'pass') {
        const { defaultPasswordStore, readPasswordStore } = await import('../../importers/passwordStore.js');
        ({ secrets: entries, skipped } = await readPasswordStore(options.store ?? defaultPasswordStore(), { env: childEnv() }));
      } else {
        throw new KeynodeError('ERR_USAGE', `unknown import format "${format}" (dotenv, json or pass)`);
      }
      const secrets = entries.map((e) => ({ path: normalizeSecretPath(joinPath(prefix, e.path)), value: e.value.toString('base64') }));
      refuseConflicts(secrets.map((s) => s.path));
      const result = await withClient(global, async (client) => {
        const created = await client.call('vaults.create', { name: options.vault }).then(
          () => true,
          (error: unknown) => {
            if (isKeynodeError(error, 'ERR_VAULT_EXISTS')) return false;
            throw error;
          },
        );
        const write = secrets.length
          ? await client.call('vaults.import', {
              name: options.vault,
              entries: secrets,
              message: options.message ?? `import ${secrets.length} secrets from ${format}`,
            })
          : null;
        return { created, commit: write?.commit ?? null };
      });
      emit(global, { vault: options.vault, imported: secrets.length, skipped, ...result }, () =>
        [
          `Imported ${secrets.length} secrets into ${options.vault}${result.created ? ' (new vault)' : ''}${result.commit ? ` (commit ${result.commit.slice(0, 12)})` : ''}`,
          ...skipped.map((s) => `  skipped ${s.path}: ${s.reason}`),
        ].join('\n'),
      );
    });
}
