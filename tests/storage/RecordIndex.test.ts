import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RecordIndex } from '../../src/storage/RecordIndex.js';

describe('RecordIndex', () => {
  it('behaves like a map of (offset, length), across growth and slot reuse (property)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 3000 }), offset: fc.integer({ min: 0, max: 2 ** 40 }), length: fc.integer({ min: 0, max: 2 ** 31 }) }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 3000 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 3000 }), (ops) => {
        const index = new RecordIndex();
        const model = new Map<string, [number, number]>();
        for (const o of ops) {
          const key = `k${o.key}`;
          const before = model.get(key)?.[1] ?? 0;
          if (o.kind === 'set') {
            expect(index.set(key, o.offset, o.length)).toBe(before);
            model.set(key, [o.offset, o.length]);
          } else {
            expect(index.delete(key)).toBe(before);
            model.delete(key);
          }
        }
        expect(index.size).toBe(model.size);
        for (const [key, location] of model) expect(index.get(key)).toEqual(location);
        expect(new Map([...index.entries()].map(([k, o, l]) => [k, [o, l]]))).toEqual(model);
        expect(index.liveBytes()).toBe([...model.values()].reduce((a, [, l]) => a + l, 0));
      }),
      { numRuns: 30 },
    );
  });
});
