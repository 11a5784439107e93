import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { masterSecretToPhrase, newMasterSecret, phraseToMasterSecret, RECOVERY_PHRASE_WORDS } from '../../src/crypto/recoveryPhrase.js';

describe('recovery phrase', () => {
  it('encodes 32 bytes as 24 words and back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (secret) => {
        const phrase = masterSecretToPhrase(secret);
        expect(phrase.split(' ')).toHaveLength(RECOVERY_PHRASE_WORDS);
        expect(phraseToMasterSecret(phrase)?.equals(Buffer.from(secret))).toBe(true);
      }),
    );
  });

  it('accepts extra whitespace and capitals', () => {
    const secret = newMasterSecret();
    const phrase = masterSecretToPhrase(secret);
    expect(phraseToMasterSecret(`  ${phrase.toUpperCase().split(' ').join('   ')}\n`)?.equals(secret)).toBe(true);
  });

  it('rejects a wrong word, a swapped order, a short phrase', () => {
    const words = masterSecretToPhrase(newMasterSecret()).split(' ');
    const wrong = [...words];
    wrong[3] = wrong[3] === 'abandon' ? 'ability' : 'abandon';
    expect(phraseToMasterSecret(wrong.join(' '))).toBeNull();
    expect(phraseToMasterSecret(words.slice(0, 23).join(' '))).toBeNull();
    expect(phraseToMasterSecret('not a phrase')).toBeNull();
    let swappedRejected = 0;
    for (let i = 0; i < 10; i++) {
      const w = masterSecretToPhrase(newMasterSecret()).split(' ');
      [w[0], w[23]] = [w[23]!, w[0]!];
      if (phraseToMasterSecret(w.join(' ')) === null) swappedRejected++;
    }
    // The 8-bit checksum catches a swap with probability 255/256 each time.
    expect(swappedRejected).toBeGreaterThanOrEqual(8);
  });
});
