/**
 * Checked codecs for JSON values that come from outside the process: requests on the agent
 * socket, replies from it, records read from disk. A `Check<T>` either returns its input typed
 * as T or throws a `CodecError` naming the field; the TypeScript type of a composite check is
 * derived from its parts (`Infer`), so a shape is declared once and its type follows.
 * The caller turns a CodecError into the right KeynodeError: ERR_INVALID_REQUEST for a request
 * (api/schema.ts), ERR_INTEGRITY for a stored record (`decodeRecord`).
 */
import { KeynodeError } from './errors.js';

export class CodecError extends Error {
  constructor(
    readonly field: string,
    readonly why: string,
  ) {
    super(`${field} ${why}`);
    this.name = 'CodecError';
  }
}

export type Check<T> = (value: unknown, field: string) => T;
/** A field that may be absent (and then is undefined). */
export type OptionalCheck<T> = Check<T | undefined> & { readonly optional: true };
export type Shape = Record<string, Check<unknown>>;
export type Infer<C> = C extends Check<infer T> ? T : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends { optional: true } ? K : never }[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
/** `{ a: string, b: optional(count) }` → `{ a: string; b?: number }`. */
export type ObjectOf<S extends Shape> = Simplify<{ [K in RequiredKeys<S>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Exclude<Infer<S[K]>, undefined> }>;
/** Object checks keep their shape, so tests and the client can see which fields a method takes. */
export type ObjectCheck<S extends Shape> = Check<ObjectOf<S>> & { readonly shape: S };

export const MAX_STRING_CHARS = 64 * 1024;
const MAX_ITEMS = 100_000;
const own = (value: object, key: string) => Object.prototype.hasOwnProperty.call(value, key);

export const string: Check<string> = (value, field) => {
  if (typeof value !== 'string') throw new CodecError(field, 'must be a string');
  if (value.length > MAX_STRING_CHARS) throw new CodecError(field, 'is too long');
  return value;
};

export const boolean: Check<boolean> = (value, field) => {
  if (typeof value !== 'boolean') throw new CodecError(field, 'must be true or false');
  return value;
};

/** A whole number ≥ 0. */
export const count: Check<number> = (value, field) => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new CodecError(field, 'must be a whole number ≥ 0');
  return value;
};

/** One of a few string literals. */
export function oneOf<const L extends readonly string[]>(...literals: L): Check<L[number]> {
  const allowed = new Set<string>(literals);
  const described = literals.map((l) => JSON.stringify(l)).join(' or ');
  return (value, field) => {
    if (typeof value !== 'string' || !allowed.has(value)) throw new CodecError(field, `must be ${described}`);
    return value;
  };
}

export function optional<T>(check: Check<T>): OptionalCheck<T> {
  const wrapped: Check<T | undefined> = (value, field) => (value === undefined ? undefined : check(value, field));
  return Object.assign(wrapped, { optional: true as const });
}

function plainObject(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CodecError(field, 'must be an object');
  return value as Record<string, unknown>;
}

/** An object with exactly these fields: unknown ones are refused, required ones must be there. */
export function object<S extends Shape>(shape: S): ObjectCheck<S> {
  const check: Check<ObjectOf<S>> = (value, field) => {
    const record = plainObject(value, field);
    // Own properties only: `constructor`, `__proto__` or `toString` are no fields of any shape.
    for (const key of Object.keys(record)) if (!own(shape, key)) throw new CodecError(`${field}.${key.slice(0, 40)}`, 'is not a known field');
    for (const [key, fieldCheck] of Object.entries(shape)) {
      const present = own(record, key);
      if (!present && !own(fieldCheck, 'optional')) throw new CodecError(`${field}.${key}`, 'is required');
      fieldCheck(present ? record[key] : undefined, `${field}.${key}`);
    }
    return record as ObjectOf<S>;
  };
  return Object.assign(check, { shape });
}

/** Exactly one of the shape's fields, e.g. `{ password }` or `{ passwordBase64 }`. */
export function exactlyOne<S extends Shape>(shape: S): Check<{ [K in keyof S]: { [F in K]: Infer<S[K]> } }[keyof S]> & { readonly shape: S } {
  const described = Object.entries(shape)
    .map(([key, fieldCheck]) => `{ ${key}: ${fieldCheck === string ? 'string' : 'value'} }`)
    .join(' or ');
  const check = (value: unknown, field: string) => {
    const record = plainObject(value, field);
    const keys = Object.keys(record);
    if (keys.length !== 1 || !own(shape, keys[0]!)) throw new CodecError(field, `must be ${described}`);
    try {
      shape[keys[0]!]!(record[keys[0]!], `${field}.${keys[0]!}`);
    } catch (error) {
      // One message for every way of missing the shape: it says what would have been right.
      if (error instanceof CodecError) throw new CodecError(field, `must be ${described}`);
      throw error;
    }
    return record as { [K in keyof S]: { [F in K]: Infer<S[K]> } }[keyof S];
  };
  return Object.assign(check, { shape });
}

export function arrayOf<T>(check: Check<T>): Check<T[]> {
  return (value, field) => {
    if (!Array.isArray(value)) throw new CodecError(field, 'must be an array');
    if (value.length > MAX_ITEMS) throw new CodecError(field, 'has too many items');
    value.forEach((item, i) => check(item, `${field}[${i}]`));
    return value as T[];
  };
}

/** Any JSON value, left as it is (a field whose shape is checked elsewhere). */
export const unknownValue: Check<unknown> = (value) => value;

/**
 * Parse and check a record read from disk. Damage of any kind (not JSON, wrong shape) is
 * ERR_INTEGRITY naming `what`, never a crash further on.
 */
export function decodeRecord<T>(check: Check<T>, bytes: Uint8Array | string, what: string, data: Record<string, unknown> = {}): T {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw new KeynodeError('ERR_INTEGRITY', `${what} is damaged: not JSON`, data);
  }
  try {
    return check(value, what);
  } catch (error) {
    if (error instanceof CodecError) throw new KeynodeError('ERR_INTEGRITY', `${what} is damaged: ${error.message}`, data);
    throw error;
  }
}
