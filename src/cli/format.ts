import { emit, type OutputOptions } from './output.js';

/** Output shared by the full commands and the fast path, so both print exactly the same. */
export function printSecretValue(options: OutputOptions, ref: { vault: string; path: string; version?: string }, value: Buffer): void {
  if (!options.json) {
    process.stdout.write(value);
    return;
  }
  const text = value.toString('utf8');
  const utf8 = Buffer.from(text, 'utf8').equals(value);
  process.stdout.write(
    JSON.stringify({
      vault: ref.vault,
      path: ref.path,
      version: ref.version ?? 'HEAD',
      encoding: utf8 ? 'utf8' : 'base64',
      value: utf8 ? text : value.toString('base64'),
    }) + '\n',
  );
}

export function printSaved(options: OutputOptions, ref: { vault: string; path: string }, bytes: number, result: { commit: string; changed: boolean }): void {
  emit(
    options,
    { vault: ref.vault, path: ref.path, bytes, ...result },
    result.changed ? `Saved ${ref.vault}:${ref.path} (commit ${result.commit.slice(0, 12)})` : `${ref.vault}:${ref.path} unchanged`,
  );
}
