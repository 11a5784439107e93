import path from 'node:path';
import { CodecError, string, type Check } from '../codec.js';
import { SECRET_VALUE_MAX_BYTES } from '../constants.js';
import { KeynodeError } from '../errors.js';

/**
 * Request validation: every field of every request is checked against its method's schema
 * (api/contract.ts) before anything runs. Unknown fields, wrong types and oversized values are
 * refused with ERR_INVALID_REQUEST; no request reaches a handler in a shape it does not expect.
 * The generic checks are codec.ts's; the ones here know the API's own limits.
 */
export { arrayOf, boolean, count, exactlyOne, object, oneOf, optional, string, type Check, type Infer, type Shape } from '../codec.js';

/** Base64 of the largest value, with padding. */
const MAX_BASE64_CHARS = Math.ceil(SECRET_VALUE_MAX_BYTES / 3) * 4;
const VALUE_TOO_LARGE = `is too large: values are limited to ${SECRET_VALUE_MAX_BYTES / 1024 / 1024} MiB`;

/** A secret value as base64 (standard alphabet, padded), at most SECRET_VALUE_MAX_BYTES decoded. */
export const base64: Check<string> = (value, field) => {
  if (typeof value !== 'string') throw new CodecError(field, 'must be a base64 string');
  if (value.length > MAX_BASE64_CHARS) throw new CodecError(field, VALUE_TOO_LARGE);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) throw new CodecError(field, 'is not valid base64');
  const padding = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0;
  if ((value.length / 4) * 3 - padding > SECRET_VALUE_MAX_BYTES) throw new CodecError(field, VALUE_TOO_LARGE);
  return value;
};

/** A file path for the agent to write: absolute, as the agent's working directory is not the caller's. */
export const absolutePath: Check<string> = (value, field) => {
  const file = string(value, field);
  if (!path.isAbsolute(file)) throw new CodecError(field, 'must be an absolute path');
  return file;
};

/** Check a request part (`params`), reporting a mismatch as ERR_INVALID_REQUEST naming the field. */
export function validateRequest<T>(check: Check<T>, value: unknown, field: string): T {
  try {
    return check(value, field);
  } catch (error) {
    if (error instanceof CodecError) throw new KeynodeError('ERR_INVALID_REQUEST', `invalid request: ${error.message}`, { field: error.field });
    throw error;
  }
}
