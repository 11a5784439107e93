import { aeadKey, type AeadKey } from '../crypto/aead.js';
import { hkdf } from '../crypto/kdf.js';
import { hmacSha256 } from '../crypto/mac.js';

export const RECORD_ID_BYTES = 32;

/**
 * A keyspace is a set of records sharing one secret (the node's own records, or one vault's).
 * A record's name (a vault name, a git object id, "HEAD") never reaches disk: its id is
 * HMAC(macKey, name), and its value is sealed with encKey, bound to that id.
 */
export class Keyspace {
  readonly encKey: AeadKey;
  /** Input of the per-value keys of chunked values (src/crypto/stream.ts, docs/chunked-values.md). */
  readonly streamSecret: Buffer;
  private readonly macKey: Buffer;

  constructor(secret: Uint8Array) {
    this.macKey = hkdf(secret, 'keynode/keyspace/lookup');
    this.encKey = aeadKey(hkdf(secret, 'keynode/keyspace/encrypt'));
    this.streamSecret = hkdf(secret, 'keynode/keyspace/stream');
  }

  recordId(name: string): Buffer {
    return hmacSha256(this.macKey, Buffer.from(name, 'utf8'));
  }
}
