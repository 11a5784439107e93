import { createHmac, timingSafeEqual } from 'node:crypto';

/** HMAC-SHA256. Used for lookup keys (so names never reach disk) and batch authentication. */
export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** Streaming HMAC-SHA256 for data handed over in pieces. */
export function hmacSha256Stream(key: Uint8Array): { update(part: Uint8Array): void; digest(): Buffer } {
  const mac = createHmac('sha256', key);
  return {
    update: (part) => void mac.update(part),
    digest: () => mac.digest(),
  };
}

/** Compare two secrets or MACs in constant time (length is not secret). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
