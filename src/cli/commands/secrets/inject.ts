import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { KeynodeError, fromSystemError } from '../../../errors.js';
import { renderTemplate, templateReferences } from '../../../formats/template.js';
import { writeFileAtomic } from '../../../storage/files.js';
import { fromBase64, globalOptions, withClient } from '../../context.js';
import { emit } from '../../output.js';

export function register(secrets: Command): void {
  secrets
    .command('inject')
    .description('render a template, replacing {{ VAULT:PATH }} with secret values (output file 0600)')
    .requiredOption('-i, --input <template>', 'the template file (- for stdin)')
    .option('-o, --output <file>', 'write here (mode 0600, atomically); default stdout')
    .action(async (options: { input: string; output?: string }, command: Command) => {
      const global = globalOptions(command);
      let template: string;
      try {
        template = fs.readFileSync(options.input === '-' ? 0 : options.input, 'utf8');
      } catch (error) {
        throw fromSystemError(error, `reading the template ${options.input}`);
      }
      const refs = templateReferences(template);
      const values = new Map<string, Buffer>();
      if (refs.length > 0) {
        // Every reference resolves before anything is written: an unknown one fails the whole run.
        const unique = [...new Map(refs.map((r) => [`${r.vault}:${r.path}`, r])).values()];
        const { items } = await withClient(global, (client) =>
          client.call('secrets.collect', { items: unique.map((r) => ({ vault: r.vault, path: r.path })) }),
        );
        items.forEach((item, i) => {
          const ref = unique[i]!;
          if (item.entries.length !== 1 || item.entries[0]!.path !== '') {
            throw new KeynodeError('ERR_IS_A_DIRECTORY', `template line ${ref.line}: ${ref.text} is a directory, not a secret`);
          }
          values.set(`${ref.vault}:${ref.path}`, fromBase64(item.entries[0]!.value));
        });
      }
      const rendered = renderTemplate(template, values);
      if (!options.output) {
        process.stdout.write(rendered);
        return;
      }
      const file = path.resolve(options.output);
      writeFileAtomic(file, rendered, 0o600);
      emit(global, { file, references: refs.length, bytes: rendered.length }, `Wrote ${file} (${refs.length} references, mode 0600)`);
    });
}
