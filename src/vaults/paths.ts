import { KeynodeError } from '../errors.js';
import { SECRET_PATH_MAX_BYTES, VAULT_NAME_MAX_BYTES } from '../constants.js';

/**
 * Secret paths are '/'-separated names inside a vault. They are stored as git tree entries, so
 * every segment must be something git and every file system accept, and nothing that could
 * escape the tree on export: no '..', no absolute paths, no NUL, no empty segments, no '.git'.
 */
function invalid(path: string, why: string): KeynodeError {
  return new KeynodeError('ERR_INVALID_PATH', `invalid secret path "${path}": ${why}`, { path });
}

/** Validate and normalise a secret path (a trailing '/' is dropped). The empty path is the vault root. */
export function normalizeSecretPath(path: string, options: { allowRoot?: boolean } = {}): string {
  let trimmed = path;
  if (trimmed.endsWith('/') && trimmed.length > 1) trimmed = trimmed.slice(0, -1);
  if (trimmed === '' || trimmed === '/') {
    if (options.allowRoot) return '';
    throw invalid(path, 'it is empty');
  }
  if (trimmed.startsWith('/')) throw invalid(path, 'absolute paths are not allowed');
  if (Buffer.byteLength(trimmed) > SECRET_PATH_MAX_BYTES) throw invalid(path, `longer than ${SECRET_PATH_MAX_BYTES} bytes`);
  if (trimmed.includes('\0')) throw invalid(path, 'it contains a NUL byte');
  for (const segment of trimmed.split('/')) {
    if (segment === '') throw invalid(path, 'it has an empty segment');
    if (segment === '.' || segment === '..') throw invalid(path, `"${segment}" segments are not allowed`);
    if (segment.toLowerCase() === '.git') throw invalid(path, '".git" is reserved');
    if (/[\x00-\x1f\x7f]/.test(segment)) throw invalid(path, 'control characters are not allowed');
  }
  return trimmed;
}

export function splitPath(path: string): string[] {
  return path === '' ? [] : path.split('/');
}

export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** Vault names: printable, no ':' or '/' (they separate vault and path), 1..255 bytes. */
export function validateVaultName(name: string): string {
  const fail = (why: string) => new KeynodeError('ERR_INVALID_NAME', `invalid vault name "${name}": ${why}`, { name });
  if (name.length === 0) throw fail('it is empty');
  if (Buffer.byteLength(name) > VAULT_NAME_MAX_BYTES) throw fail(`longer than ${VAULT_NAME_MAX_BYTES} bytes`);
  if (/[:/\\]/.test(name)) throw fail('":", "/" and "\\" are not allowed');
  if (/[\x00-\x1f\x7f]/.test(name)) throw fail('control characters are not allowed');
  if (name.trim() !== name) throw fail('leading or trailing spaces are not allowed');
  if (name === '.' || name === '..') throw fail('"." and ".." are not allowed');
  return name;
}

/** Tags: the same rules as vault names. */
export function validateTag(tag: string): string {
  try {
    return validateVaultName(tag);
  } catch {
    throw new KeynodeError('ERR_INVALID_NAME', `invalid tag "${tag}"`, { tag });
  }
}

export interface SecretRef {
  vault: string;
  path: string;
}

/** Parse "VAULT:PATH" (or "VAULT" / "VAULT:" for the root when allowed). */
export function parseSecretRef(ref: string, options: { allowRoot?: boolean } = {}): SecretRef {
  const colon = ref.indexOf(':');
  const vault = colon < 0 ? ref : ref.slice(0, colon);
  const path = colon < 0 ? '' : ref.slice(colon + 1);
  if (colon < 0 && !options.allowRoot) {
    throw new KeynodeError('ERR_INVALID_PATH', `expected VAULT:PATH, got "${ref}"`, { ref });
  }
  return { vault: validateVaultName(vault), path: normalizeSecretPath(path, options) };
}
