import { describe, expect, it } from 'vitest';
import { generateSecret } from '../../src/vaults/generateSecret.js';
import { isKeynodeError } from '../../src/errors.js';

function errorOf(work: () => unknown): unknown {
  try {
    work();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('generateSecret', () => {
  it('draws from a named set or from literal characters', () => {
    expect(generateSecret({ length: 64, charset: 'hex' })).toMatch(/^[0-9a-f]{64}$/);
    expect(generateSecret({ length: 64, charset: 'xy' })).toMatch(/^[xy]{64}$/);
    expect(generateSecret({ length: 20 })).toMatch(/^[A-Za-z0-9]{20}$/);
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'a', 'aa', ''])('--charset %j is a clear usage error, not a crash', (charset) => {
    const error = errorOf(() => generateSecret({ charset }));
    expect(isKeynodeError(error, 'ERR_INVALID_ARGUMENT')).toBe(true);
    expect((error as Error).message).toMatch(/--charset must name a set/);
  });
});
