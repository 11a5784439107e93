import { describe, expect, it } from 'vitest';
import { METHODS } from '../../src/api/contract.js';
import { FILE_PARAMS } from '../../src/api/fileParams.js';
import { absolutePath, arrayOf, base64, boolean, count, object, optional, string, validateRequest } from '../../src/api/schema.js';
import { SECRET_VALUE_MAX_BYTES } from '../../src/constants.js';
import { isKeynodeError } from '../../src/errors.js';

const check = object({
  vault: string,
  path: optional(string),
  n: optional(count),
  flag: optional(boolean),
  value: optional(base64),
  items: optional(arrayOf(object({ a: string }))),
});

function codeOf(value: unknown): string | undefined {
  try {
    validateRequest(check, value, 'params');
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
    // Inherited names are no fields: an `in` check took them for known ones.
    ['a "constructor" field', JSON.parse('{"vault":"v","constructor":1}')],
    ['a "__proto__" field', JSON.parse('{"vault":"v","__proto__":{"x":1}}')],
    ['a "toString" field', JSON.parse('{"vault":"v","toString":"x"}')],
    ['a "hasOwnProperty" field', JSON.parse('{"vault":"v","hasOwnProperty":1}')],
  ])('refuses %s with ERR_INVALID_REQUEST', (_label, value) => {
    expect(codeOf(value)).toBe('ERR_INVALID_REQUEST');
  });

  it('does not take a required field from the prototype', () => {
    const shape = object({ constructor: string });
    expect(() => validateRequest(shape, {}, 'params')).toThrow(/params.constructor is required/);
  });

  it('says the value limit when a value is too large', () => {
    const justOver = Buffer.alloc(SECRET_VALUE_MAX_BYTES + 1).toString('base64');
    expect(() => validateRequest(base64, justOver, 'params.value')).toThrow(
      `invalid request: params.value is too large: values are limited to ${SECRET_VALUE_MAX_BYTES / 1024 / 1024} MiB`,
    );
    expect(() => validateRequest(base64, Buffer.alloc(SECRET_VALUE_MAX_BYTES).toString('base64'), 'params.value')).not.toThrow(); // exactly the limit
    expect(() => validateRequest(base64, 'A'.repeat(200 * 1024 * 1024), 'params.value')).toThrow('values are limited to'); // refused before it is scanned
  });

  it('takes only absolute file paths, and every such field is one the client resolves', () => {
    expect(() => validateRequest(absolutePath, 'out/bundle', 'params.file')).toThrow('params.file must be an absolute path');
    expect(() => validateRequest(absolutePath, '/tmp/bundle', 'params.file')).not.toThrow();
    const fileFields = Object.entries(METHODS).flatMap(([name, method]) =>
      Object.entries('shape' in method.params ? (method.params.shape as Record<string, unknown>) : {})
        .filter(([, check]) => check === absolutePath)
        .map(([field]) => `${name}.${field}`),
    );
    expect(fileFields).toEqual(Object.entries(FILE_PARAMS).flatMap(([name, fields]) => (fields ?? []).map((field) => `${name}.${field}`)));
    expect(fileFields.length).toBeGreaterThan(0);
  });
});
