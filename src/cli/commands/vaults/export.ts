import path from 'node:path';
import type { Command } from 'commander';
import { KeynodeError } from '../../../errors.js';
import { EnvCollector, envNameFor } from '../../../formats/envNames.js';
import { serializeDotenv } from '../../../formats/dotenv.js';
import { toJsonSecrets } from '../../../formats/jsonSecrets.js';
import { writeFileAtomic } from '../../../storage/files.js';
import { fromBase64, globalOptions, withClient, type GlobalOptions } from '../../context.js';
import { emit } from '../../output.js';
import { confirmAction } from '../../prompt.js';

/** The vault's current secrets as dotenv or JSON, to stdout or (after confirming) a 0600 file. */
async function exportValues(global: GlobalOptions, name: string, options: { format?: string; output?: string; yes?: boolean }): Promise<void> {
  if (options.format !== 'dotenv' && options.format !== 'json') throw new KeynodeError('ERR_USAGE', '--format is dotenv or json');
  const file = options.output ? path.resolve(options.output) : undefined;
  const entries = await withClient(global, async (client) => {
    const { items } = await client.call('secrets.collect', { items: [{ vault: name, path: '' }] });
    if (file) await confirmAction(`Write the secrets of "${name}" UNENCRYPTED to ${file}`, name, options.yes);
    return items[0]!.entries.map((e) => ({ path: e.path, value: fromBase64(e.value) }));
  });
  let text: string;
  if (options.format === 'json') {
    text = JSON.stringify(toJsonSecrets(entries), null, 2) + '\n';
  } else {
    const env = new EnvCollector();
    for (const entry of entries) env.add(envNameFor(entry.path), `${name}:${entry.path}`, entry.value);
    text = serializeDotenv(env.toObject());
  }
  if (!file) {
    process.stdout.write(text);
    return;
  }
  writeFileAtomic(file, Buffer.from(text, 'utf8'), 0o600);
  emit(
    global,
    { vault: name, file, secrets: entries.length, format: options.format },
    `Wrote ${entries.length} secrets of ${name} to ${file} (${options.format}, plaintext, mode 0600)`,
  );
}

export function register(vaults: Command): void {
  vaults
    .command('export <name>')
    .description('export a vault in PLAINTEXT: its whole history as a git bundle, or its secrets as dotenv or JSON')
    .option('--git-bundle <file>', 'the bundle file to write (mode 0600)')
    .option('--format <format>', 'dotenv or json: the current secrets (to stdout, or --output)')
    .option('-o, --output <file>', 'with --format: write here (mode 0600) instead of stdout')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (name: string, options: { gitBundle?: string; format?: string; output?: string; yes?: boolean }, command: Command) => {
      const global = globalOptions(command);
      if (options.format !== undefined) return exportValues(global, name, options);
      if (!options.gitBundle) throw new KeynodeError('ERR_USAGE', 'say what to write: --git-bundle FILE, or --format dotenv|json');
      const file = path.resolve(options.gitBundle);
      const result = await withClient(global, async (client) => {
        const { vaults } = await client.call('vaults.list', {});
        if (!vaults.some((v) => v.name === name)) throw new KeynodeError('ERR_VAULT_NOT_FOUND', `no vault named "${name}"`, { vault: name });
        await confirmAction(`Write every secret and version of "${name}" UNENCRYPTED to ${file}`, name, options.yes);
        return client.call('vaults.exportBundle', { name, file });
      });
      emit(global, { vault: name, file, ...result }, `Wrote ${file} (${result.objects} objects, plaintext). Read it with: git clone ${file}`);
    });
}
