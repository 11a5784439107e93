import { KeynodeError } from '../errors.js';

/**
 * JSON for import/export: an object whose keys are secret paths and values are strings (UTF-8)
 * or { "base64": "..." } for binary values. On import, nested objects are directories:
 * { "db": { "password": "x" } } is the same as { "db/password": "x" }.
 */
export type JsonSecretValue = string | { base64: string };

function isUtf8(value: Buffer): boolean {
  return Buffer.from(value.toString('utf8'), 'utf8').equals(value);
}

export function toJsonSecrets(entries: ReadonlyArray<{ path: string; value: Buffer }>): Record<string, JsonSecretValue> {
  const out: Record<string, JsonSecretValue> = {};
  for (const { path, value } of entries) out[path] = isUtf8(value) ? value.toString('utf8') : { base64: value.toString('base64') };
  return out;
}

function isBase64Value(value: unknown): value is { base64: string } {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 1 && typeof (value as { base64?: unknown }).base64 === 'string';
}

export function fromJsonSecrets(json: unknown): Array<{ path: string; value: Buffer }> {
  const out: Array<{ path: string; value: Buffer }> = [];
  const walk = (node: unknown, prefix: string): void => {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) {
      throw new KeynodeError('ERR_INVALID_ARGUMENT', `JSON${prefix ? ` at "${prefix}"` : ''}: expected an object of secrets`);
    }
    for (const [key, value] of Object.entries(node)) {
      const path = prefix ? `${prefix}/${key}` : key;
      const child: unknown = value;
      if (typeof child === 'string') out.push({ path, value: Buffer.from(child, 'utf8') });
      else if (isBase64Value(child)) out.push({ path, value: Buffer.from(child.base64, 'base64') });
      else walk(child, path);
    }
  };
  walk(json, '');
  return out;
}
