import { randomBytes as nodeRandomBytes, randomInt } from 'node:crypto';

/** Cryptographically secure random bytes. */
export function randomBytes(length: number): Buffer {
  return nodeRandomBytes(length);
}

/** A uniformly random index in [0, bound), without modulo bias (node:crypto rejects and retries). */
export function randomIndex(bound: number): number {
  return randomInt(bound);
}

const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/**
 * Random bytes for nonces, drawn from a pooled CSPRNG buffer (one getrandom call per 4 KiB
 * instead of one per message). The returned bytes are copied, so the pool is never shared.
 */
export function randomNonce(length: number): Buffer {
  if (poolOffset + length > pool.length) {
    pool = nodeRandomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  const nonce = Buffer.from(pool.subarray(poolOffset, poolOffset + length));
  pool.fill(0, poolOffset, poolOffset + length);
  poolOffset += length;
  return nonce;
}
