import fs from 'node:fs';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { keyFilePath, phraseMatchesKeyFile, unlockKeyFile, writeKeyFile, keyFileKdfParams } from '../../src/keys/KeyFile.js';
import { newMasterSecret } from '../../src/crypto/recoveryPhrase.js';
import type { Argon2idParams } from '../../src/crypto/kdf.js';
import { isKeynodeError } from '../../src/errors.js';
import { KDF_MAX_ITERATIONS, KDF_MAX_MEMORY_KIB, KDF_MAX_PARALLELISM, KDF_MIN_ITERATIONS, KDF_MIN_MEMORY_KIB } from '../../src/constants.js';
import { tempDir, TEST_KDF } from '../helpers/index.js';

/** Every argon2id call this file makes; with `fake`, a wrong key is returned instead of deriving one. */
const argon2Calls = vi.hoisted(() => ({ calls: [] as { salt: Uint8Array; params: Argon2idParams }[], fake: false }));
vi.mock('../../src/crypto/kdf.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/crypto/kdf.js')>();
  return {
    ...real,
    argon2id: async (password: Uint8Array, salt: Uint8Array, params: Argon2idParams) => {
      argon2Calls.calls.push({ salt, params: { ...params } });
      return argon2Calls.fake ? Buffer.alloc(32, 7) : real.argon2id(password, salt, params);
    },
  };
});
afterEach(() => {
  argon2Calls.calls.length = 0;
  argon2Calls.fake = false;
});

function inBounds({ salt, params }: { salt: Uint8Array; params: Argon2idParams }): boolean {
  const within = (n: number, lo: number, hi: number) => Number.isSafeInteger(n) && n >= lo && n <= hi;
  return (
    salt.length === 16 &&
    within(params.memoryKib, KDF_MIN_MEMORY_KIB, KDF_MAX_MEMORY_KIB) &&
    within(params.iterations, KDF_MIN_ITERATIONS, KDF_MAX_ITERATIONS) &&
    within(params.parallelism, 1, KDF_MAX_PARALLELISM)
  );
}

/** Write `contents` as a key file with a correct checksum (as an attacker can: it is no MAC). */
function writeCrafted(dir: string, contents: Record<string, unknown>): void {
  const checksum = createHash('sha256').update(JSON.stringify(contents)).digest('base64');
  fs.writeFileSync(keyFilePath(dir), JSON.stringify({ ...contents, checksum }, null, 2) + '\n');
}

/** Run every reader of the key file; each must succeed or fail with a KeynodeError. */
async function readAll(dir: string): Promise<string[]> {
  const outcomes: string[] = [];
  const attempt = async (read: () => unknown) => {
    try {
      await read();
      outcomes.push('ok');
    } catch (error) {
      outcomes.push(isKeynodeError(error) ? error.code : `not a KeynodeError: ${String(error)}`);
    }
  };
  await attempt(() => unlockKeyFile(dir, Buffer.from('pw')));
  await attempt(() => keyFileKdfParams(dir));
  await attempt(() => phraseMatchesKeyFile(dir, newMasterSecret()));
  return outcomes;
}

const params = { ...TEST_KDF, parallelism: 1 };

describe('KeyFile', () => {
  it('unwraps the master secret with the right password only', async () => {
    const dir = tempDir();
    const master = newMasterSecret();
    await writeKeyFile(dir, master, Buffer.from('pw-1'), params);
    expect((await unlockKeyFile(dir, Buffer.from('pw-1'))).equals(master)).toBe(true);
    const wrong = await unlockKeyFile(dir, Buffer.from('pw-2')).catch((e: unknown) => e);
    expect(isKeynodeError(wrong, 'ERR_WRONG_PASSWORD')).toBe(true);
    expect(keyFileKdfParams(dir)).toEqual(params);
    expect(fs.statSync(keyFilePath(dir)).mode & 0o777).toBe(0o600);
  });

  it('tells damage (ERR_INTEGRITY) from a wrong password', async () => {
    const dir = tempDir();
    await writeKeyFile(dir, newMasterSecret(), Buffer.from('pw'), params);
    const original = fs.readFileSync(keyFilePath(dir));
    for (const offset of [5, 40, Math.floor(original.length / 2), original.length - 20]) {
      const bytes = Buffer.from(original);
      bytes[offset] = bytes[offset] === 0x41 ? 0x42 : 0x41;
      fs.writeFileSync(keyFilePath(dir), bytes);
      const error = await unlockKeyFile(dir, Buffer.from('pw')).catch((e: unknown) => e);
      expect(isKeynodeError(error, 'ERR_INTEGRITY') || isKeynodeError(error, 'ERR_NOT_SUPPORTED')).toBe(true);
    }
  });

  it('recognises its own recovery secret and no other', async () => {
    const dir = tempDir();
    const master = newMasterSecret();
    await writeKeyFile(dir, master, Buffer.from('pw'), params);
    expect(phraseMatchesKeyFile(dir, master)).toBe(true);
    expect(phraseMatchesKeyFile(dir, newMasterSecret())).toBe(false);
  });

  it('holds no plaintext secret: the wrapped key differs each time it is written', async () => {
    const dir = tempDir();
    const master = newMasterSecret();
    await writeKeyFile(dir, master, Buffer.from('pw'), params);
    const first = fs.readFileSync(keyFilePath(dir));
    await writeKeyFile(dir, master, Buffer.from('pw'), params);
    expect(first.equals(fs.readFileSync(keyFilePath(dir)))).toBe(false);
    expect(first.includes(master)).toBe(false);
    expect(first.includes(Buffer.from(master.toString('base64')))).toBe(false);
  });

  it('refuses out-of-bounds KDF parameters with ERR_INTEGRITY before running argon2', async () => {
    const dir = tempDir();
    await writeKeyFile(dir, newMasterSecret(), Buffer.from('pw'), params);
    const original = JSON.parse(fs.readFileSync(keyFilePath(dir), 'utf8')) as { checksum?: string; kdf: Record<string, unknown> };
    delete original.checksum;
    argon2Calls.calls.length = 0;
    const cases: Record<string, unknown>[] = [
      { memoryKib: 4 * 1024 * 1024, iterations: 100 }, // the audit's 4 GiB / t=100 (30 s, 4 GB)
      { memoryKib: 2 ** 32 },
      { memoryKib: 0 },
      { memoryKib: 8 },
      { memoryKib: 1.5 },
      { memoryKib: '65536' },
      { iterations: 0 },
      { iterations: KDF_MAX_ITERATIONS + 1 },
      { parallelism: 0 },
      { parallelism: 2 ** 24 },
      { algorithm: 'argon2i' },
      { salt: '' },
      { salt: 'AAAA' },
      { salt: Buffer.alloc(17).toString('base64') },
      { salt: 12 },
      { extra: 1 },
    ];
    for (const change of cases) {
      writeCrafted(dir, { ...original, kdf: { ...original.kdf, ...change } });
      const error = await unlockKeyFile(dir, Buffer.from('pw')).catch((e: unknown) => e);
      expect(isKeynodeError(error, 'ERR_INTEGRITY'), JSON.stringify(change)).toBe(true);
      expect((error as Error).message).toMatch(/has invalid KDF parameters/);
      expect(() => keyFileKdfParams(dir)).toThrow(/has invalid KDF parameters/);
    }
    expect(argon2Calls.calls).toEqual([]);
  });

  it('refuses to write KDF parameters it would refuse to read', async () => {
    const dir = tempDir();
    for (const bad of [{ memoryKib: KDF_MAX_MEMORY_KIB + 1 }, { iterations: KDF_MAX_ITERATIONS + 1 }, { parallelism: KDF_MAX_PARALLELISM + 1 }]) {
      const error = await writeKeyFile(dir, newMasterSecret(), Buffer.from('pw'), { ...params, ...bad }).catch((e: unknown) => e);
      expect(isKeynodeError(error, 'ERR_INVALID_ARGUMENT')).toBe(true);
    }
    expect(argon2Calls.calls).toEqual([]);
  });

  it('never fails with anything but a KeynodeError, nor runs argon2 out of bounds, on mutated key files (property)', async () => {
    const dir = tempDir();
    await writeKeyFile(dir, newMasterSecret(), Buffer.from('pw'), params);
    const originalBytes = fs.readFileSync(keyFilePath(dir));
    const original = JSON.parse(originalBytes.toString('utf8')) as Record<string, unknown> & { kdf: Record<string, unknown> };
    delete original.checksum;
    argon2Calls.calls.length = 0;
    argon2Calls.fake = true; // in-bounds parameters may still be up to 1 GiB: record, do not derive
    const tally = new Map<string, number>();
    const count = (outcomes: string[]) => outcomes.forEach((o) => tally.set(o, (tally.get(o) ?? 0) + 1));
    const nasty = fc.oneof(
      fc.jsonValue(),
      fc.integer(),
      fc.double(),
      fc.constantFrom(0, -1, 1, 7, 8, 1023, 1024, KDF_MAX_MEMORY_KIB, KDF_MAX_MEMORY_KIB + 1, 2 ** 31, 2 ** 32, 2 ** 53, 1e308, 100, 20, 21, 16, 17, 2 ** 24),
      fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString('base64')),
      fc.string(),
    );
    const field = fc.constantFrom(
      'format',
      'kdf',
      'wrapped',
      'phraseCheck',
      'extra',
      'kdf.algorithm',
      'kdf.memoryKib',
      'kdf.iterations',
      'kdf.parallelism',
      'kdf.salt',
      'kdf.extra',
    );
    const mutation = fc.record({ field, value: fc.option(nasty, { nil: undefined }) }); // undefined: delete the field
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        const contents: Record<string, unknown> & { kdf: unknown } = { ...original, kdf: { ...original.kdf } };
        for (const { field: name, value } of mutations) {
          const [head, tail] = name.split('.') as [string, string | undefined];
          const target: Record<string, unknown> =
            tail === undefined ? contents : typeof contents.kdf === 'object' && contents.kdf !== null ? (contents.kdf as Record<string, unknown>) : contents;
          const key = tail ?? head;
          if (value === undefined) delete target[key];
          else target[key] = value;
        }
        writeCrafted(dir, contents);
        count(await readAll(dir));
      }),
      { numRuns: 400 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: originalBytes.length - 1 }),
        fc.integer({ min: 0, max: 255 }),
        fc.boolean(),
        async (offset, byte, truncate) => {
          const bytes = truncate ? originalBytes.subarray(0, offset) : Buffer.from(originalBytes);
          if (!truncate) bytes[offset] = byte;
          fs.writeFileSync(keyFilePath(dir), bytes);
          count(await readAll(dir));
        },
      ),
      { numRuns: 200 },
    );
    const notKeynode = [...tally].filter(([outcome]) => outcome.startsWith('not a KeynodeError'));
    expect(notKeynode).toEqual([]);
    expect(
      [...tally.keys()].every((o) => ['ok', 'ERR_INTEGRITY', 'ERR_NOT_SUPPORTED', 'ERR_WRONG_PASSWORD'].includes(o)),
      [...tally.keys()].join(),
    ).toBe(true);
    expect(argon2Calls.calls.filter((call) => !inBounds(call))).toEqual([]);
    console.log(`key file mutations: ${JSON.stringify(Object.fromEntries(tally))}; argon2 calls ${argon2Calls.calls.length}, all in bounds`);
  });
});
