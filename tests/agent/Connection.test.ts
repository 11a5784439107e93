import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunksOf } from '../../src/agent/Connection.js';
import { STREAM_FRAME_MAX_BYTES, STREAM_FRAME_MAX_ITEMS } from '../../src/constants.js';
import { encodeChunk, parseFrame } from '../../src/ipc/protocol.js';

describe('stream frames (chunksOf, encodeChunk)', () => {
  it('cut a page into frames that keep every item, in order, within the limits', () => {
    const item = fc.oneof(
      fc.record({ path: fc.string({ maxLength: 40 }), type: fc.constantFrom('secret', 'dir') }),
      fc.record({ path: fc.string({ minLength: 20_000, maxLength: 70_000 }), type: fc.constant('secret') }), // larger than a frame by itself
      fc.record({ message: fc.string({ unit: 'binary', maxLength: 300 }) }),
    );
    fc.assert(
      fc.property(fc.array(item, { maxLength: 2_500 }), (page) => {
        const chunks = chunksOf(page);
        const frames = chunks.map((json) => parseFrame(Buffer.from(encodeChunk(7, json).slice(0, -1))));
        expect(frames.flatMap((frame) => ('chunk' in frame ? frame.chunk : ['not a chunk']))).toEqual(page);
        for (const json of chunks) {
          const items = JSON.parse(json) as unknown[];
          expect(items.length).toBeGreaterThan(0);
          expect(items.length).toBeLessThanOrEqual(STREAM_FRAME_MAX_ITEMS);
          if (items.length > 1) expect(Buffer.byteLength(json)).toBeLessThanOrEqual(STREAM_FRAME_MAX_BYTES);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('writes a chunk frame and an end frame as docs/api.md shows them', async () => {
    const { encodeEnd } = await import('../../src/ipc/protocol.js');
    expect(encodeChunk(9, JSON.stringify([{ path: 'web/token', type: 'secret' }]))).toBe('{"v":1,"id":9,"chunk":[{"path":"web/token","type":"secret"}]}\n');
    expect(encodeEnd(9)).toBe('{"v":1,"id":9,"end":true}\n');
    expect(encodeEnd('a')).toBe('{"v":1,"id":"a","end":true}\n');
  });
});
