import path from 'node:path';
import { SECRET_VALUE_MAX_BYTES } from '../constants.js';
import { KeynodeError } from '../errors.js';

/**
 * Request validation: every field of every request is checked against its method's schema
 * before anything runs. Unknown fields, wrong types and oversized values are refused with
 * ERR_INVALID_REQUEST; no request reaches a handler in a shape it does not expect.
 */
export type Check = (value: unknown, field: string) => void;

const MAX_STRING_CHARS = 64 * 1024;
/** Base64 of the largest value, with padding. */
const MAX_BASE64_CHARS = Math.ceil(SECRET_VALUE_MAX_BYTES / 3) * 4;
const MAX_ITEMS = 100_000;
const own = (value: object, key: string) => Object.prototype.hasOwnProperty.call(value, key);
const VALUE_TOO_LARGE = `is too large: values are limited to ${SECRET_VALUE_MAX_BYTES / 1024 / 1024} MiB`;

function bad(field: string, why: string): KeynodeError {
  return new KeynodeError('ERR_INVALID_REQUEST', `invalid request: ${field} ${why}`, { field });
}

export const string: Check = (value, field) => {
  if (typeof value !== 'string') throw bad(field, 'must be a string');
  if (value.length > MAX_STRING_CHARS) throw bad(field, 'is too long');
};

export const base64: Check = (value, field) => {
  if (typeof value !== 'string') throw bad(field, 'must be a base64 string');
  if (value.length > MAX_BASE64_CHARS) throw bad(field, VALUE_TOO_LARGE);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) throw bad(field, 'is not valid base64');
  const padding = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0;
  if ((value.length / 4) * 3 - padding > SECRET_VALUE_MAX_BYTES) throw bad(field, VALUE_TOO_LARGE);
};

/** A file path for the agent to write: absolute, as the agent's working directory is not the caller's. */
export const absolutePath: Check = (value, field) => {
  string(value, field);
  if (!path.isAbsolute(value as string)) throw bad(field, 'must be an absolute path');
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

/** The check keeps its shape, so tests can see which fields a method takes. */
export function object(shape: Shape): Check & { shape: Shape } {
  const check: Check = (value, field) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(field, 'must be an object');
    // Own properties only: `constructor`, `__proto__` or `toString` are no fields of any shape.
    for (const key of Object.keys(value)) if (!own(shape, key)) throw bad(`${field}.${key.slice(0, 40)}`, 'is not a known field');
    for (const [key, check] of Object.entries(shape)) {
      const present = own(value, key);
      if (!present && !own(check, 'optional')) throw bad(`${field}.${key}`, 'is required');
      check(present ? (value as Record<string, unknown>)[key] : undefined, `${field}.${key}`);
    }
  };
  return Object.assign(check, { shape });
}

export function arrayOf(check: Check): Check {
  return (value, field) => {
    if (!Array.isArray(value)) throw bad(field, 'must be an array');
    if (value.length > MAX_ITEMS) throw bad(field, 'has too many items');
    value.forEach((item, i) => check(item, `${field}[${i}]`));
  };
}
