import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AEAD_OVERHEAD_BYTES, aeadKey, open, seal } from '../../src/crypto/aead.js';
import { randomBytes } from '../../src/crypto/random.js';

describe('aead', () => {
  const key = aeadKey(randomBytes(32));

  it('round-trips any bytes with any associated data', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.uint8Array({ maxLength: 64 }), (plaintext, aad) => {
        const sealed = seal(key, plaintext, aad);
        expect(sealed.length).toBe(plaintext.length + AEAD_OVERHEAD_BYTES);
        expect(open(key, sealed, aad)?.equals(Buffer.from(plaintext))).toBe(true);
      }),
    );
  });

  it('rejects any single flipped bit, a wrong key, and other associated data', () => {
    const sealed = seal(key, Buffer.from('secret value'), Buffer.from('id-1'));
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const copy = Buffer.from(sealed);
      copy[bit >> 3]! ^= 1 << (bit & 7);
      expect(open(key, copy, Buffer.from('id-1'))).toBeNull();
    }
    expect(open(aeadKey(randomBytes(32)), sealed, Buffer.from('id-1'))).toBeNull();
    expect(open(key, sealed, Buffer.from('id-2'))).toBeNull();
    expect(open(key, sealed.subarray(0, 10), Buffer.from('id-1'))).toBeNull();
  });

  it('uses a fresh nonce each time', () => {
    const a = seal(key, Buffer.from('same'));
    const b = seal(key, Buffer.from('same'));
    expect(a.equals(b)).toBe(false);
  });
});
