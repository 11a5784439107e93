import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromJsonSecrets, toJsonSecrets } from '../../src/formats/jsonSecrets.js';

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
  });
});
