import { randomBytes as nodeRandomBytes, randomInt } from 'node:crypto';

/** Cryptographically secure random bytes. */
export function randomBytes(length: number): Buffer {
  return nodeRandomBytes(length);
}

/** A uniformly random index in [0, bound), without modulo bias (node:crypto rejects and retries). */
export function randomIndex(bound: number): number {
  return randomInt(bound);
}
