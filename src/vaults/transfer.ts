import { KeynodeError } from '../errors.js';
import { baseName, joinPath, normalizeSecretPath } from './paths.js';
import type { Vault, WriteResult } from './Vault.js';

/**
 * Copy a secret or directory from one vault into another. Vaults have separate keys, so the
 * values are re-written under the target vault's key as one commit there. A move copies, then
 * removes from the source: a failure in between leaves two copies, never none.
 */
export async function copyBetweenVaults(
  source: Vault,
  from: string,
  target: Vault,
  to: string,
  options: { overwrite?: boolean; move?: boolean } = {},
): Promise<{ target: WriteResult; source?: WriteResult; path: string }> {
  const fromPath = normalizeSecretPath(from);
  const dest = normalizeSecretPath(to, { allowRoot: true });
  const entries = await source.list(fromPath);
  const isDir = !(entries.length === 1 && entries[0]!.path === fromPath && entries[0]!.type === 'secret');
  const toPath = (await target.typeOf(dest)) === 'dir' ? joinPath(dest, baseName(fromPath)) : dest;
  const existingType = await target.typeOf(toPath);
  if (existingType && (!options.overwrite || existingType === 'dir')) {
    throw new KeynodeError('ERR_PATH_EXISTS', `${target.name}:${toPath} already exists`, { vault: target.name, path: toPath });
  }
  const writes: Array<{ path: string; value: Buffer }> = [];
  for (const entry of entries) {
    if (entry.type !== 'secret') continue;
    const relative = isDir ? entry.path.slice(fromPath.length) : '';
    writes.push({ path: toPath + relative, value: await source.readSecret(entry.path) });
  }
  const verb = options.move ? 'move' : 'copy';
  const targetResult = await target.applyEdits(
    writes.length > 0 || !isDir ? writes : [{ path: toPath, mkdir: true }],
    `${verb} ${source.name}:${fromPath} to ${toPath}`,
  );
  if (!options.move) return { target: targetResult, path: toPath };
  const sourceResult = await source.remove(fromPath, { recursive: true, message: `${verb} ${fromPath} to ${target.name}:${toPath}` });
  return { target: targetResult, source: sourceResult, path: toPath };
}
