import { describe, expect, expectTypeOf, it } from 'vitest';
import type { ParamsOf } from '../src/api/contract.js';
import { count, decodeRecord, exactlyOne, object, oneOf, optional, string, type Infer } from '../src/codec.js';

describe('codecs', () => {
  it('derive the type from the shape (declared once)', () => {
    const shape = object({ name: string, limit: optional(count), kind: oneOf('move', 'copy') });
    expectTypeOf<Infer<typeof shape>>().toEqualTypeOf<{ name: string; limit?: number; kind: 'move' | 'copy' }>();
    const _password = exactlyOne({ password: string, passwordBase64: string });
    expectTypeOf<Infer<typeof _password>>().toEqualTypeOf<{ password: string } | { passwordBase64: string }>();
    // API params come from the schemas, not from a second declaration.
    expectTypeOf<ParamsOf<'vaults.log'>>().toEqualTypeOf<{ name: string; path?: string; limit?: number }>();
    expect(shape({ name: 'x', kind: 'copy' }, 'p')).toEqual({ name: 'x', kind: 'copy' });
  });

  it('decode a damaged record as ERR_INTEGRITY, never a crash further on', () => {
    const record = object({ nodeId: string, createdAt: string });
    expect(decodeRecord(record, Buffer.from('{"nodeId":"a","createdAt":"b"}'), 'the record')).toEqual({ nodeId: 'a', createdAt: 'b' });
    for (const damaged of ['{"nodeId":"a"', '[]', '{"nodeId":1,"createdAt":"b"}', '{"nodeId":"a","createdAt":"b","x":1}', '\u0000']) {
      expect(() => decodeRecord(record, Buffer.from(damaged), 'the record'), damaged).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }));
    }
  });
});
