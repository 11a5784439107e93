import { SECRET_PATH_MAX_BYTES } from '../constants.js';
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
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.keys(value).length === 1 &&
    typeof (value as { base64?: unknown }).base64 === 'string'
  );
}

/** Strict base64 (padding optional): Buffer.from would silently drop what it cannot read. */
function decodeBase64(text: string, path: string): Buffer {
  const value = Buffer.from(text, 'base64');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || value.toString('base64').replace(/=+$/, '') !== text.replace(/=+$/, '')) {
    throw new KeynodeError('ERR_INVALID_ARGUMENT', `JSON at "${path}": "base64" is not valid base64`);
  }
  return value;
}

export function fromJsonSecrets(json: unknown): Array<{ path: string; value: Buffer }> {
  const out: Array<{ path: string; value: Buffer }> = [];
  const walk = (node: unknown, prefix: string): void => {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) {
      throw new KeynodeError('ERR_INVALID_ARGUMENT', `JSON${prefix ? ` at "${prefix}"` : ''}: expected an object of secrets`);
    }
    for (const [key, value] of Object.entries(node)) {
      const path = prefix ? `${prefix}/${key}` : key;
      // Bounds the recursion too: each level adds at least one byte.
      if (Buffer.byteLength(path) > SECRET_PATH_MAX_BYTES) {
        throw new KeynodeError('ERR_INVALID_ARGUMENT', `JSON nests deeper than a secret path may be (${SECRET_PATH_MAX_BYTES} bytes)`);
      }
      const child: unknown = value;
      if (typeof child === 'string') out.push({ path, value: Buffer.from(child, 'utf8') });
      else if (isBase64Value(child)) out.push({ path, value: decodeBase64(child.base64, path) });
      else walk(child, path);
    }
  };
  walk(json, '');
  return out;
}

/**
 * JSON.parse, with an error that gives only where the text goes wrong: the engine's own
 * message quotes the text around the fault, and an import file is full of secrets.
 */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    const offset = jsonErrorOffset(text);
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - before.lastIndexOf('\n');
    const where = offset >= text.length ? `it ends early (line ${line})` : `line ${line}, column ${column}`;
    throw new KeynodeError('ERR_INVALID_ARGUMENT', `not valid JSON: ${where}`, { line, column, offset });
  }
}

const JSON_NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/**
 * Offset of the first character that makes `text` invalid JSON (RFC 8259), text.length when it
 * ends too early, -1 when it is valid. Iterative, so deep nesting cannot overflow the stack.
 */
export function jsonErrorOffset(text: string): number {
  const n = text.length;
  let i = 0;
  const open: string[] = [];
  let expect: 'value' | 'valueOrClose' | 'key' | 'keyOrClose' | 'colon' | 'after' = 'value';
  const scanString = (): boolean => {
    i++; // the opening quote
    while (i < n) {
      const code = text.charCodeAt(i);
      if (code === 0x22) {
        i++;
        return true;
      }
      if (code < 0x20) return false;
      if (code === 0x5c) {
        i++;
        if (i >= n) return false;
        if ('"\\/bfnrt'.includes(text[i]!)) i++;
        else if (text[i] === 'u') {
          for (let k = 0; k < 4; k++) if (!/[0-9A-Fa-f]/.test(text[++i] ?? '')) return false;
          i++;
        } else return false;
        continue;
      }
      i++;
    }
    return false;
  };
  const scanScalar = (): boolean => {
    const c = text[i]!;
    if (c === '"') return scanString();
    for (const word of ['true', 'false', 'null']) {
      if (c !== word[0]) continue;
      for (const char of word) {
        if (text[i] !== char) return false;
        i++;
      }
      return true;
    }
    JSON_NUMBER.lastIndex = i;
    const number = JSON_NUMBER.exec(text);
    if (!number) return false;
    i += number[0].length;
    return true;
  };
  for (;;) {
    while (i < n && ' \t\n\r'.includes(text[i]!)) i++;
    if (i >= n) return expect === 'after' && open.length === 0 ? -1 : n;
    const c = text[i]!;
    if (expect === 'value' || expect === 'valueOrClose') {
      if (expect === 'valueOrClose' && c === ']') {
        open.pop();
        i++;
        expect = 'after';
      } else if (c === '{' || c === '[') {
        open.push(c);
        i++;
        expect = c === '{' ? 'keyOrClose' : 'valueOrClose';
      } else if (scanScalar()) {
        expect = 'after';
      } else {
        return Math.min(i, n);
      }
    } else if (expect === 'key' || expect === 'keyOrClose') {
      if (expect === 'keyOrClose' && c === '}') {
        open.pop();
        i++;
        expect = 'after';
      } else if (c === '"' && scanString()) {
        expect = 'colon';
      } else {
        return Math.min(i, n);
      }
    } else if (expect === 'colon') {
      if (c !== ':') return i;
      i++;
      expect = 'value';
    } else {
      const top = open[open.length - 1];
      if (top === undefined) return i; // text after the document
      if (c === ',') expect = top === '{' ? 'key' : 'value';
      else if ((c === '}' && top === '{') || (c === ']' && top === '[')) open.pop();
      else return i;
      i++;
    }
  }
}
