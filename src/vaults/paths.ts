import { KeynodeError } from '../errors.js';
import { SECRET_PATH_MAX_BYTES, SECRET_SEGMENT_MAX_BYTES, VAULT_NAME_MAX_BYTES } from '../constants.js';

/**
 * Secret paths are '/'-separated names inside a vault. They are stored as git tree entries, so
 * every segment must be something git and every file system accept, and nothing that could
 * escape the tree on export: no '..', no absolute paths, no NUL, no empty segments, no name
 * git treats as its own ('.git' in any spelling a file system maps to it, '.gitmodules' and
 * '.gitattributes', whose contents `git fsck` and checkout interpret), no backslash (a
 * directory separator on Windows), no segment a file system cannot hold (over 255 bytes).
 */
function invalid(path: string, why: string): KeynodeError {
  return new KeynodeError('ERR_INVALID_PATH', `invalid secret path "${path}": ${why}`, { path });
}

/** ASCII-only lower case: file systems fold these; other letters never spell a git name. */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** Code points HFS+ ignores in names (as git's utf8.c lists them): ".g\u200Cit" is ".git" on a Mac. */
const HFS_IGNORED = /[\u200C-\u200F\u202A-\u202E\u206A-\u206F\uFEFF]/g;

/** Whether HFS+ sees `segment` as `.${name}`. */
function isHfsDotName(segment: string, name: string): boolean {
  return asciiLower(segment.replace(HFS_IGNORED, '')) === `.${name}`;
}

/** What NTFS ignores after a name: trailing spaces and periods, then an optional ':stream'. */
function isNtfsTail(rest: string): boolean {
  return /^[ .]*(:[^]*)?$/.test(rest);
}

/** Length of an 8.3 fallback short name ("gi7eba~1", "~1234567") of a name with hash `prefix`, else -1. */
function ntfsFallbackShortName(lower: string, prefix: string): number {
  let sawTilde = false;
  let i = 0;
  for (; i < 8; i++) {
    const c = lower[i];
    if (c === undefined) return -1;
    if (sawTilde) {
      if (c < '0' || c > '9') return -1;
    } else if (c === '~') {
      const digit = lower[++i];
      if (digit === undefined || digit < '1' || digit > '9') return -1;
      sawTilde = true;
    } else if (i >= 6 || c !== prefix[i]) {
      return -1;
    }
  }
  return i;
}

/** Whether NTFS may resolve `segment` to `.${name}`: long name, 6-char short name ~1..~4, or hashed short name. */
function isNtfsDotName(segment: string, name: string, shortNamePrefix: string): boolean {
  const lower = asciiLower(segment);
  if (lower.startsWith(`.${name}`) && isNtfsTail(lower.slice(name.length + 1))) return true;
  if (lower.startsWith(`${name.slice(0, 6)}~`) && /^[1-4]$/.test(lower[7] ?? '') && isNtfsTail(lower.slice(8))) return true;
  const short = ntfsFallbackShortName(lower, shortNamePrefix);
  return short > 0 && isNtfsTail(lower.slice(short));
}

/** Whether NTFS may resolve `segment` to `.git` (".git . .", "GIT~1", ".git::$INDEX_ALLOCATION"). */
function isNtfsDotGit(segment: string): boolean {
  const lower = asciiLower(segment);
  return (lower.startsWith('.git') && isNtfsTail(lower.slice(4))) || (lower.startsWith('git~1') && isNtfsTail(lower.slice(5)));
}

/** Why git would refuse `segment` as a tree entry name, or null. */
export function gitReservedName(segment: string): string | null {
  // Every reserved spelling has a "g" (".git", "GIT~1", "gi7eba~1") or a "~" ("~1234567"):
  // most names skip the checks below (reads validate paths on every call).
  if (!/[gG~]/.test(segment)) return null;
  if (isHfsDotName(segment, 'git') || isNtfsDotGit(segment)) return '".git" is reserved';
  if (isHfsDotName(segment, 'gitmodules') || isNtfsDotName(segment, 'gitmodules', 'gi7eba')) return '".gitmodules" is reserved';
  if (isHfsDotName(segment, 'gitattributes') || isNtfsDotName(segment, 'gitattributes', 'gi7d29')) return '".gitattributes" is reserved';
  return null;
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
  // A lone surrogate is written as U+FFFD: two different paths would name one entry.
  if (!trimmed.isWellFormed()) throw invalid(path, 'it is not well-formed Unicode');
  for (const segment of trimmed.split('/')) {
    if (segment === '') throw invalid(path, 'it has an empty segment');
    if (segment === '.' || segment === '..') throw invalid(path, `"${segment}" segments are not allowed`);
    if (/[\x00-\x1f\x7f]/.test(segment)) throw invalid(path, 'control characters are not allowed');
    if (segment.includes('\\')) throw invalid(path, '"\\" is not allowed');
    // UTF-8 takes at most 3 bytes per UTF-16 unit: only long segments need counting.
    if (segment.length * 3 > SECRET_SEGMENT_MAX_BYTES && Buffer.byteLength(segment) > SECRET_SEGMENT_MAX_BYTES)
      throw invalid(path, `a segment is longer than ${SECRET_SEGMENT_MAX_BYTES} bytes`);
    const reserved = gitReservedName(segment);
    if (reserved) throw invalid(path, reserved);
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
