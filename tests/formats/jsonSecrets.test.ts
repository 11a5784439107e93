import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromJsonSecrets, jsonErrorOffset, parseJsonText, toJsonSecrets } from '../../src/formats/jsonSecrets.js';
import { isKeynodeError } from '../../src/errors.js';

describe('JSON secrets', () => {
  it('round-trips any bytes through JSON text (property)', () => {
    const path = fc.stringMatching(/^[a-z]{1,6}(\/[a-z]{1,6}){0,2}$/);
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(path, fc.uint8Array({ maxLength: 64 })), { selector: ([p]) => p, maxLength: 6 }), (pairs) => {
        const entries = pairs.map(([p, v]) => ({ path: p, value: Buffer.from(v) }));
        const back = fromJsonSecrets(JSON.parse(JSON.stringify(toJsonSecrets(entries))));
        expect(back).toEqual(entries);
      }),
    );
  });

  it('reads nested objects as directories', () => {
    expect(fromJsonSecrets({ db: { password: 'x', nested: { deep: 'y' } }, bin: { base64: 'AAE=' } })).toEqual([
      { path: 'db/password', value: Buffer.from('x') },
      { path: 'db/nested/deep', value: Buffer.from('y') },
      { path: 'bin', value: Buffer.from([0, 1]) },
    ]);
    expect(() => fromJsonSecrets(['not', 'an', 'object'])).toThrow(/expected an object/);
    expect(() => fromJsonSecrets({ a: 5 })).toThrow(/expected an object/);
    // Buffer.from would read these as empty or truncated values.
    for (const bad of ['!!!', 'A', 'AA E=', 'AAE=x', 'AAE-'])
      expect(() => fromJsonSecrets({ bin: { base64: bad } }), bad).toThrow(/"bin": "base64" is not valid base64/);
    expect(fromJsonSecrets({ bin: { base64: 'AAE' } })).toEqual([{ path: 'bin', value: Buffer.from([0, 1]) }]); // padding is optional
  });

  it('a malformed file is reported by line and column only, never by its content', () => {
    const cases: Array<[string, string]> = [
      ['{"db": hunter2}', 'line 1, column 8'],
      ['{\n  "a": "ok",\n  "b": hunter2\n}', 'line 3, column 8'],
      ['{"a": tru}', 'line 1, column 10'],
      ['{"a": "hunter2"', 'it ends early (line 1)'],
      ['{"a": "hunter2\tx"}', 'line 1, column 15'],
      ['{"a": "\\hunter2"}', 'line 1, column 9'],
      ['{"a": 01}', 'line 1, column 8'],
      ['{"a": "x"} hunter2', 'line 1, column 12'],
      ["{'hunter2': 1}", 'line 1, column 2'],
      ['', 'it ends early (line 1)'],
    ];
    for (const [text, where] of cases) {
      const error = (() => {
        try {
          parseJsonText(text);
        } catch (e) {
          return e;
        }
      })();
      expect(isKeynodeError(error, 'ERR_INVALID_ARGUMENT'), text).toBe(true);
      expect((error as Error).message).toBe(`not valid JSON: ${where}`);
    }
  });

  it('finds no fault in any valid JSON, and one in any JSON.parse rejects (property)', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        expect(jsonErrorOffset(text)).toBe(-1);
      }),
    );
    const mutated = fc.tuple(fc.json(), fc.nat(), fc.constantFrom('', ',', '}', ']', '"', ':', 'x', '\\', '\n', '{', '[', '0', '-', 'e', '\u0001'));
    fc.assert(
      fc.property(mutated, ([json, at, insert]) => {
        const i = at % (json.length + 1);
        const text = json.slice(0, i) + insert + json.slice(i + (insert === '' ? 1 : 0));
        let valid = true;
        try {
          JSON.parse(text);
        } catch {
          valid = false;
        }
        expect(jsonErrorOffset(text) === -1).toBe(valid);
      }),
      { numRuns: 500 },
    );
    expect(jsonErrorOffset('['.repeat(100_000))).toBe(100_000); // deep nesting: no stack overflow
  });

  it('refuses nesting deeper than a secret path can be, with a clear error', () => {
    const deep = JSON.parse('{"a":'.repeat(5000) + '"x"' + '}'.repeat(5000)) as unknown;
    expect(() => fromJsonSecrets(deep)).toThrow(/nests deeper/);
  });
});
