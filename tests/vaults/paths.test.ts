import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { normalizeSecretPath, parseSecretRef, validateVaultName } from '../../src/vaults/paths.js';
import { isKeynodeError } from '../../src/errors.js';

const segment = fc.stringMatching(/^[A-Za-z0-9_\-.@+= ]{1,20}$/).filter((s) => s !== '.' && s !== '..' && s.toLowerCase() !== '.git');

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return isKeynodeError(error) ? error.code : 'not a KeynodeError';
  }
}

describe('secret paths', () => {
  it.each([
    ['', 'empty'],
    ['/abs', 'absolute'],
    ['a//b', 'empty segment'],
    ['a/../b', 'dot-dot'],
    ['..', 'dot-dot'],
    ['./a', 'dot'],
    ['.git/config', '.git'],
    ['a/.GIT', '.git any case'],
    ['a\0b', 'NUL'],
    ['a\nb', 'control character'],
    ['x'.repeat(5000), 'too long'],
  ])('rejects %j (%s) with ERR_INVALID_PATH', (path) => {
    expect(code(() => normalizeSecretPath(path))).toBe('ERR_INVALID_PATH');
  });

  it('accepts valid paths and normalisation is idempotent (property)', () => {
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 6 }), fc.boolean(), (segments, slash) => {
        const path = segments.join('/') + (slash ? '/' : '');
        const normalized = normalizeSecretPath(path);
        expect(normalized).toBe(segments.join('/'));
        expect(normalizeSecretPath(normalized)).toBe(normalized);
      }),
    );
  });

  it('parses VAULT:PATH references', () => {
    expect(parseSecretRef('prod:db/password')).toEqual({ vault: 'prod', path: 'db/password' });
    expect(parseSecretRef('prod:a:b')).toEqual({ vault: 'prod', path: 'a:b' });
    expect(parseSecretRef('prod', { allowRoot: true })).toEqual({ vault: 'prod', path: '' });
    expect(code(() => parseSecretRef('prod'))).toBe('ERR_INVALID_PATH');
    expect(code(() => parseSecretRef(':x'))).toBe('ERR_INVALID_NAME');
  });

  it('validates vault names', () => {
    expect(validateVaultName('my vault-1')).toBe('my vault-1');
    for (const bad of ['', 'a/b', 'a:b', ' pad', 'x\u0001', '..', 'v'.repeat(300)]) expect(code(() => validateVaultName(bad))).toBe('ERR_INVALID_NAME');
  });
});
