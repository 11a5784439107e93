import { randomIndex } from './random.js';

/** Named character sets for generated secrets. */
export const CHARSETS = {
  alnum: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
  alpha: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
  lower: 'abcdefghijklmnopqrstuvwxyz',
  upper: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
  digits: '0123456789',
  hex: '0123456789abcdef',
  ascii: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~',
} as const;

export type CharsetName = keyof typeof CHARSETS;

/** A uniformly random string of `length` characters drawn from `alphabet` (unique characters). */
export function randomString(length: number, alphabet: string): string {
  const chars = [...new Set(alphabet)];
  if (chars.length < 2) throw new RangeError('a character set needs at least two distinct characters');
  let out = '';
  for (let i = 0; i < length; i++) out += chars[randomIndex(chars.length)];
  return out;
}

/** A passphrase of `count` words drawn uniformly from `wordlist`. */
export function randomWords(count: number, wordlist: readonly string[], separator = '-'): string {
  const words: string[] = [];
  for (let i = 0; i < count; i++) words.push(wordlist[randomIndex(wordlist.length)]!);
  return words.join(separator);
}
