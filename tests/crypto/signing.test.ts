import { describe, expect, it } from 'vitest';
import { ed25519FromSeed, ed25519PublicKeyFromRaw, ed25519Sign, ed25519Verify } from '../../src/crypto/signing.js';
import { randomBytes } from '../../src/crypto/random.js';

describe('ed25519', () => {
  it('derives the same key pair from the same seed', () => {
    const seed = randomBytes(32);
    expect(ed25519FromSeed(seed).publicKeyRaw.equals(ed25519FromSeed(seed).publicKeyRaw)).toBe(true);
    expect(ed25519FromSeed(randomBytes(32)).publicKeyRaw.equals(ed25519FromSeed(seed).publicKeyRaw)).toBe(false);
  });

  it('matches the RFC 8032 test vector 1', () => {
    const pair = ed25519FromSeed(Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'));
    expect(pair.publicKeyRaw.toString('hex')).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(ed25519Sign(pair.privateKey, Buffer.alloc(0)).toString('hex')).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });

  it('verifies its own signatures and rejects altered ones', () => {
    const pair = ed25519FromSeed(randomBytes(32));
    const message = Buffer.from('hello');
    const signature = ed25519Sign(pair.privateKey, message);
    const publicKey = ed25519PublicKeyFromRaw(pair.publicKeyRaw);
    expect(ed25519Verify(publicKey, message, signature)).toBe(true);
    expect(ed25519Verify(publicKey, Buffer.from('hellp'), signature)).toBe(false);
  });
});
