import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { keyFilePath, phraseMatchesKeyFile, unlockKeyFile, writeKeyFile, keyFileKdfParams } from '../../src/keys/KeyFile.js';
import { newMasterSecret } from '../../src/crypto/recoveryPhrase.js';
import { isKeynodeError } from '../../src/errors.js';
import { tempDir, TEST_KDF } from '../helpers/index.js';

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
});
