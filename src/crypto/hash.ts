import { createHash } from 'node:crypto';

/** SHA-256 (file checksums: accidental-corruption detection where no key is available yet). */
export function sha256(...parts: Uint8Array[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** SHA-256 over parts fed one at a time. */
export function sha256Stream(): { update(part: Uint8Array): void; digest(): Buffer } {
  const hash = createHash('sha256');
  return {
    update: (part) => void hash.update(part),
    digest: () => hash.digest(),
  };
}
