import { describe, expect, it } from 'vitest';
import { CHARSETS, randomString, randomWords } from '../../src/crypto/generate.js';
import { PASSPHRASE_WORDLIST } from '../../src/crypto/recoveryPhrase.js';

describe('generate', () => {
  it('draws only from the alphabet, at the requested length', () => {
    for (const alphabet of Object.values(CHARSETS)) {
      const value = randomString(200, alphabet);
      expect([...value]).toHaveLength(200);
      for (const char of value) expect(alphabet).toContain(char);
    }
  });

  it('uses every character of a small alphabet over many draws', () => {
    const seen = new Set(randomString(2000, 'abcd'));
    expect([...seen].sort().join('')).toBe('abcd');
  });

  it('refuses an alphabet with fewer than two distinct characters', () => {
    expect(() => randomString(10, 'aaaa')).toThrow(RangeError);
  });

  it('makes passphrases from the word list', () => {
    const words = randomWords(6, PASSPHRASE_WORDLIST, ' ').split(' ');
    expect(words).toHaveLength(6);
    for (const word of words) expect(PASSPHRASE_WORDLIST).toContain(word);
    expect(PASSPHRASE_WORDLIST).toHaveLength(2048); // 11 bits a word
  });
});
