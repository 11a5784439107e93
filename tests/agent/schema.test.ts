import { describe, expect, it } from 'vitest';
import { arrayOf, base64, boolean, count, object, optional, string } from '../../src/agent/schema.js';
import { isKeynodeError } from '../../src/errors.js';

const check = object({ vault: string, path: optional(string), n: optional(count), flag: optional(boolean), value: optional(base64), items: optional(arrayOf(object({ a: string }))) });

function codeOf(value: unknown): string | undefined {
  try {
    check(value, 'params');
    return undefined;
  } catch (error) {
    return isKeynodeError(error) ? error.code : 'not a KeynodeError';
  }
}

describe('request schema', () => {
  it('accepts well-formed params', () => {
    expect(codeOf({ vault: 'v' })).toBeUndefined();
    expect(codeOf({ vault: 'v', path: 'p', n: 3, flag: true, value: 'AAEC', items: [{ a: 'x' }] })).toBeUndefined();
  });

  it.each([
    ['not an object', 'x'],
    ['null', null],
    ['an array', []],
    ['missing field', {}],
    ['wrong type', { vault: 5 }],
    ['unknown field', { vault: 'v', extra: 1 }],
    ['negative count', { vault: 'v', n: -1 }],
    ['fractional count', { vault: 'v', n: 1.5 }],
    ['bad base64', { vault: 'v', value: 'not base64!' }],
    ['bad item', { vault: 'v', items: [{ a: 1 }] }],
    ['huge string', { vault: 'x'.repeat(100_000) }],
  ])('refuses %s with ERR_INVALID_REQUEST', (_label, value) => {
    expect(codeOf(value)).toBe('ERR_INVALID_REQUEST');
  });
});
