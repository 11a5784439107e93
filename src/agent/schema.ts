import { KeynodeError } from '../errors.js';

/**
 * Request validation: every field of every request is checked against its method's schema
 * before anything runs. Unknown fields, wrong types and oversized values are refused with
 * ERR_INVALID_REQUEST; no request reaches a handler in a shape it does not expect.
 */
export type Check = (value: unknown, field: string) => void;

const MAX_STRING_CHARS = 64 * 1024;
const MAX_BASE64_CHARS = 96 * 1024 * 1024;
const MAX_ITEMS = 100_000;

function bad(field: string, why: string): KeynodeError {
  return new KeynodeError('ERR_INVALID_REQUEST', `invalid request: ${field} ${why}`, { field });
}

export const string: Check = (value, field) => {
  if (typeof value !== 'string') throw bad(field, 'must be a string');
  if (value.length > MAX_STRING_CHARS) throw bad(field, 'is too long');
};

export const base64: Check = (value, field) => {
  if (typeof value !== 'string') throw bad(field, 'must be a base64 string');
  if (value.length > MAX_BASE64_CHARS) throw bad(field, 'is too large');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) throw bad(field, 'is not valid base64');
};

export const boolean: Check = (value, field) => {
  if (typeof value !== 'boolean') throw bad(field, 'must be true or false');
};

export const count: Check = (value, field) => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw bad(field, 'must be a whole number ≥ 0');
};

export function optional(check: Check): Check & { optional: true } {
  const wrapped: Check = (value, field) => {
    if (value !== undefined) check(value, field);
  };
  return Object.assign(wrapped, { optional: true as const });
}

export type Shape = Record<string, Check>;

export function object(shape: Shape): Check {
  return (value, field) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(field, 'must be an object');
    for (const key of Object.keys(value)) if (!(key in shape)) throw bad(`${field}.${key}`, 'is not a known field');
    for (const [key, check] of Object.entries(shape)) {
      const present = Object.prototype.hasOwnProperty.call(value, key);
      if (!present && !('optional' in check)) throw bad(`${field}.${key}`, 'is required');
      check((value as Record<string, unknown>)[key], `${field}.${key}`);
    }
  };
}

export function arrayOf(check: Check): Check {
  return (value, field) => {
    if (!Array.isArray(value)) throw bad(field, 'must be an array');
    if (value.length > MAX_ITEMS) throw bad(field, 'has too many items');
    value.forEach((item, i) => check(item, `${field}[${i}]`));
  };
}
