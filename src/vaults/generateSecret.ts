import { CHARSETS, randomString, randomWords, type CharsetName } from '../crypto/generate.js';
import { PASSPHRASE_WORDLIST } from '../crypto/recoveryPhrase.js';
import { KeynodeError } from '../errors.js';
import { GENERATE_DEFAULT_LENGTH, GENERATE_MAX_LENGTH } from '../constants.js';

export interface GenerateOptions {
  /** Characters (default 32). */
  length?: number;
  /** A named set (alnum, alpha, lower, upper, digits, hex, ascii) or literal characters. Default alnum. */
  charset?: string;
  /** Make a passphrase of this many words instead (2,048-word list, 11 bits each). */
  words?: number;
  separator?: string;
}

/** A new random secret value. */
export function generateSecret(options: GenerateOptions = {}): string {
  if (options.words !== undefined) {
    if (!Number.isInteger(options.words) || options.words < 1 || options.words > 256) {
      throw new KeynodeError('ERR_INVALID_ARGUMENT', '--words must be 1..256');
    }
    return randomWords(options.words, PASSPHRASE_WORDLIST, options.separator ?? '-');
  }
  const length = options.length ?? GENERATE_DEFAULT_LENGTH;
  if (!Number.isInteger(length) || length < 1 || length > GENERATE_MAX_LENGTH) {
    throw new KeynodeError('ERR_INVALID_ARGUMENT', `--length must be 1..${GENERATE_MAX_LENGTH}`);
  }
  const name = options.charset ?? 'alnum';
  // Own properties only: `constructor` or `__proto__` must not reach Object.prototype.
  const alphabet = Object.hasOwn(CHARSETS, name) ? CHARSETS[name as CharsetName] : name;
  const distinct = new Set(alphabet).size;
  // Literal characters are each given once; a repeat almost always means a mistyped set name.
  if (distinct < 2 || distinct !== [...alphabet].length) {
    throw new KeynodeError(
      'ERR_INVALID_ARGUMENT',
      `--charset must name a set (${Object.keys(CHARSETS).join(', ')}) or list at least two characters, each once`,
    );
  }
  return randomString(length, alphabet);
}
