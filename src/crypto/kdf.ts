import { hkdfSync } from 'node:crypto';
import argon2 from 'argon2';

export interface Argon2idParams {
  /** Memory in KiB. */
  memoryKib: number;
  iterations: number;
  parallelism: number;
}

/** Derive a 32-byte key from a password with argon2id. */
export async function argon2id(password: Uint8Array, salt: Uint8Array, params: Argon2idParams): Promise<Buffer> {
  return argon2.hash(Buffer.from(password), {
    type: argon2.argon2id,
    raw: true,
    hashLength: 32,
    salt: Buffer.from(salt),
    memoryCost: params.memoryKib,
    timeCost: params.iterations,
    parallelism: params.parallelism,
  });
}

/** HKDF-SHA256: derive independent subkeys from one secret, separated by `info` labels. */
export function hkdf(secret: Uint8Array, info: string, length = 32, salt: Uint8Array = new Uint8Array(0)): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, salt, info, length));
}
