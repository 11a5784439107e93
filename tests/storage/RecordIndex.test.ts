import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ROW_WORDS, RecordIndex } from '../../src/storage/RecordIndex.js';

/** A record id as the store makes them: 32 uniformly spread bytes. */
const idOf = (n: number) => createHash('sha256').update(String(n)).digest();
/** Ids that all hash to the same slot: probing and tombstones under the worst collisions. */
const collidingIdOf = (n: number) => {
  const id = Buffer.alloc(32);
  id.writeUInt32BE(n, 28);
  return id;
};

describe('RecordIndex', () => {
  for (const [label, makeId] of [
    ['random ids', idOf],
    ['colliding ids', collidingIdOf],
  ] as const) {
    it(`behaves like a map of (offset, length), across growth, deletes and reuse (property, ${label})`, () => {
      const op = fc.oneof(
        fc.record({
          kind: fc.constant('set' as const),
          key: fc.integer({ min: 0, max: 3000 }),
          offset: fc.integer({ min: 0, max: 2 ** 40 }),
          length: fc.integer({ min: 0, max: 2 ** 31 }),
        }),
        fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 3000 }) }),
      );
      fc.assert(
        fc.property(fc.array(op, { maxLength: label === 'random ids' ? 3000 : 400 }), (ops) => {
          const index = new RecordIndex();
          const model = new Map<string, [number, number]>();
          for (const o of ops) {
            const id = makeId(o.key);
            const key = id.toString('hex');
            const before = model.get(key)?.[1] ?? 0;
            if (o.kind === 'set') {
              expect(index.set(id, o.offset, o.length)).toBe(before);
              model.set(key, [o.offset, o.length]);
            } else {
              expect(index.delete(id)).toBe(before);
              model.delete(key);
            }
          }
          expect(index.size).toBe(model.size);
          for (const [key, location] of model) expect(index.get(Buffer.from(key, 'hex'))).toEqual(location);
          expect(new Map([...index.entries()].map(([k, o, l]) => [k.toString('hex'), [o, l]]))).toEqual(model);
          expect(index.liveBytes()).toBe([...model.values()].reduce((a, [, l]) => a + l, 0));
          // Rows (the checkpoint layout) and clones carry exactly the same entries.
          const rows = new Uint32Array((index.size + 1) * ROW_WORDS);
          let n = 0;
          for (let slot = 0; slot < index.slotCount; slot += 100) n += index.copyRows(slot, 100, rows, n);
          expect(n).toBe(index.size);
          const loaded = new RecordIndex();
          loaded.setRows(rows, n);
          for (const copy of [loaded, index.clone()]) {
            expect(new Map([...copy.entries()].map(([k, o, l]) => [k.toString('hex'), [o, l]]))).toEqual(model);
            expect(copy.liveBytes()).toBe(index.liveBytes());
          }
        }),
        { numRuns: 30 },
      );
    });
  }

  it('a clone does not follow later changes', () => {
    const index = new RecordIndex();
    index.set(idOf(1), 10, 20);
    const copy = index.clone();
    index.set(idOf(1), 30, 40);
    index.set(idOf(2), 50, 60);
    expect(copy.get(idOf(1))).toEqual([10, 20]);
    expect(copy.has(idOf(2))).toBe(false);
  });
});
