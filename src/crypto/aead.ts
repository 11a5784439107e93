import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { randomNonce } from './random.js';

/**
 * AES-256-GCM with a random 96-bit nonce per message.
 * Sealed layout: nonce (12) | ciphertext | tag (16). The associated data binds a ciphertext to
 * where it belongs (a lookup key, a file header) so it cannot be moved elsewhere undetected.
 */
export const AEAD_NONCE_BYTES = 12;
export const AEAD_TAG_BYTES = 16;
export const AEAD_OVERHEAD_BYTES = AEAD_NONCE_BYTES + AEAD_TAG_BYTES;
export const AEAD_KEY_BYTES = 32;

export type AeadKey = KeyObject;

export function aeadKey(raw: Uint8Array): AeadKey {
  if (raw.length !== AEAD_KEY_BYTES) throw new RangeError('AES-256-GCM key must be 32 bytes');
  return createSecretKey(raw);
}

export function seal(key: AeadKey, plaintext: Uint8Array, associatedData?: Uint8Array): Buffer {
  const nonce = randomNonce(AEAD_NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  if (associatedData) cipher.setAAD(associatedData);
  const body = cipher.update(plaintext);
  const final = cipher.final();
  return Buffer.concat([nonce, body, final, cipher.getAuthTag()]);
}

/** Returns the plaintext, or null when the ciphertext, nonce, tag or associated data was altered (or the key is wrong). */
export function open(key: AeadKey, sealed: Uint8Array, associatedData?: Uint8Array): Buffer | null {
  if (sealed.length < AEAD_OVERHEAD_BYTES) return null;
  const view = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const nonce = view.subarray(0, AEAD_NONCE_BYTES);
  const tag = view.subarray(view.length - AEAD_TAG_BYTES);
  const body = view.subarray(AEAD_NONCE_BYTES, view.length - AEAD_TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_BYTES });
    if (associatedData) decipher.setAAD(associatedData);
    decipher.setAuthTag(tag);
    const first = decipher.update(body);
    const final = decipher.final();
    return final.length === 0 ? first : Buffer.concat([first, final]);
  } catch {
    return null;
  }
}
