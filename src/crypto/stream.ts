import { createCipheriv, createDecipheriv } from 'node:crypto';
import { aeadKey, type AeadKey } from './aead.js';
import { hkdf } from './kdf.js';

/**
 * Chunked AEAD for values too large to seal in one call: the STREAM construction of age
 * (internal/stream), with AES-256-GCM. Spec and test vectors: docs/chunked-values.md.
 *
 *   key      = HKDF-SHA256(secret, salt = 32 random bytes per value, info = STREAM_KEY_INFO)
 *   nonce_i  = i as 11 bytes big-endian | 0x01 on the last chunk, 0x00 on every other
 *   chunk_i  = AES-256-GCM(key, nonce_i, plaintext_i) = ciphertext | tag (16)
 *
 * Every chunk but the last holds exactly `chunkBytes` of plaintext; the last holds 1 to
 * `chunkBytes` (0 only when the whole value is empty). A fresh key per value makes counter
 * nonces safe; the counter catches reordered, dropped or duplicated chunks, the last flag a cut
 * at a chunk boundary, the key chunks moved between values.
 */
export const STREAM_CHUNK_BYTES = 1_024 * 1_024;
export const STREAM_TAG_BYTES = 16;
export const STREAM_SALT_BYTES = 32;
export const STREAM_NONCE_BYTES = 12;
export const STREAM_KEY_INFO = 'keynode/stream/v1';
const LAST_CHUNK_FLAG = 0x01;
/** Counters stay exact in a double; at 1 MiB a chunk that is 8 EiB, far past any value. */
const MAX_CHUNKS = Number.MAX_SAFE_INTEGER;

/** The key of one value's chunks. `salt` must be fresh random bytes for every value sealed. */
export function streamKey(secret: Uint8Array, salt: Uint8Array): AeadKey {
  if (salt.length !== STREAM_SALT_BYTES) throw new RangeError(`stream salt must be ${STREAM_SALT_BYTES} bytes`);
  return aeadKey(hkdf(secret, STREAM_KEY_INFO, 32, salt));
}

export function streamNonce(counter: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(STREAM_NONCE_BYTES);
  nonce.writeBigUInt64BE(BigInt(counter), 3); // bytes 0..2 stay zero: an 11-byte counter
  nonce[STREAM_NONCE_BYTES - 1] = last ? LAST_CHUNK_FLAG : 0;
  return nonce;
}

function checkChunkBytes(chunkBytes: number): number {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw new RangeError('stream chunk size must be a positive integer');
  return chunkBytes;
}

/**
 * Seals a value handed over in pieces of any size into chunks. A full chunk is held back
 * until more data arrives, because only `finish` knows which chunk is the last.
 */
export class StreamWriter {
  readonly chunkBytes: number;
  private readonly pending: Buffer;
  private filled = 0;
  private counter = 0;
  private finished = false;

  constructor(
    private readonly key: AeadKey,
    options: { chunkBytes?: number } = {},
  ) {
    this.chunkBytes = checkChunkBytes(options.chunkBytes ?? STREAM_CHUNK_BYTES);
    this.pending = Buffer.allocUnsafe(this.chunkBytes);
  }

  /** Take more plaintext; returns the chunks it completed, sealed, in order (often none). */
  push(data: Uint8Array): Buffer[] {
    if (this.finished) throw new Error('StreamWriter: push after finish');
    const sealed: Buffer[] = [];
    let at = 0;
    while (at < data.length) {
      if (this.filled === this.chunkBytes) {
        // More data follows, so the held-back chunk is not the last.
        sealed.push(this.seal(this.pending, false));
        this.filled = 0;
      }
      const take = Math.min(this.chunkBytes - this.filled, data.length - at);
      this.pending.set(data.subarray(at, at + take), this.filled);
      this.filled += take;
      at += take;
    }
    return sealed;
  }

  /** Seal what is held as the last chunk (empty only for an empty value). */
  finish(): Buffer {
    if (this.finished) throw new Error('StreamWriter: finish called twice');
    const last = this.seal(this.pending.subarray(0, this.filled), true);
    this.finished = true;
    this.pending.fill(0);
    this.filled = 0;
    return last;
  }

  /** Chunks sealed so far. */
  get chunkCount(): number {
    return this.counter;
  }

  private seal(plaintext: Buffer, last: boolean): Buffer {
    if (this.counter >= MAX_CHUNKS) throw new Error('StreamWriter: too many chunks');
    const cipher = createCipheriv('aes-256-gcm', this.key, streamNonce(this.counter, last));
    const body = cipher.update(plaintext);
    const final = cipher.final();
    this.counter++;
    return Buffer.concat([body, final, cipher.getAuthTag()], plaintext.length + STREAM_TAG_BYTES);
  }
}

/**
 * Opens one value's chunks in order. The caller says which chunk it holds as the last (the
 * end of its input): a chunk sealed otherwise fails, so a cut or an extended stream is caught.
 */
export class StreamReader {
  readonly chunkBytes: number;
  private counter = 0;
  private done = false;

  constructor(
    private readonly key: AeadKey,
    options: { chunkBytes?: number } = {},
  ) {
    this.chunkBytes = checkChunkBytes(options.chunkBytes ?? STREAM_CHUNK_BYTES);
  }

  /**
   * The plaintext of the next chunk, or null when it does not verify (altered, out of order,
   * from another value, wrongly marked last or not last, or of a size the format forbids).
   */
  open(sealed: Uint8Array, options: { last: boolean }): Buffer | null {
    if (this.done) throw new Error('StreamReader: chunk after the last one');
    const plaintextBytes = sealed.length - STREAM_TAG_BYTES;
    const sizeFits = options.last ? plaintextBytes >= (this.counter === 0 ? 0 : 1) && plaintextBytes <= this.chunkBytes : plaintextBytes === this.chunkBytes;
    if (!sizeFits) return null;
    const view = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, streamNonce(this.counter, options.last), { authTagLength: STREAM_TAG_BYTES });
      decipher.setAuthTag(view.subarray(plaintextBytes));
      const body = decipher.update(view.subarray(0, plaintextBytes));
      const final = decipher.final();
      plaintext = final.length === 0 ? body : Buffer.concat([body, final]);
    } catch {
      return null;
    }
    this.counter++;
    if (options.last) this.done = true;
    return plaintext;
  }

  /** Chunks opened so far. */
  get chunkCount(): number {
    return this.counter;
  }

  /** Whether the last chunk has been opened (a reader that stops before it has a cut stream). */
  get finished(): boolean {
    return this.done;
  }
}
