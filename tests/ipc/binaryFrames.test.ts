import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BINARY_FRAME_HEADER_BYTES, FrameReader, binaryChunkHeader } from '../../src/ipc/framing.js';
import { parseFrame } from '../../src/ipc/protocol.js';

/** A JSON line or a binary chunk frame (payload of any bytes, newlines and NULs included). */
const frameArb = fc.oneof(
  fc.record({ kind: fc.constant('json' as const), text: fc.json().filter((t) => t.length > 0 && !t.includes('\n')) }),
  fc.record({ kind: fc.constant('binary' as const), id: fc.nat({ max: 0xffff_ffff }), payload: fc.uint8Array({ maxLength: 300 }) }),
);

describe('binary chunk frames (docs/api.md, "Binary chunk frames")', () => {
  it('come out whole and in order between JSON lines, however the bytes are cut', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 40 }), (frames, cuts) => {
        const wire = Buffer.concat(
          frames.map((f) => (f.kind === 'json' ? Buffer.from(f.text + '\n') : Buffer.concat([binaryChunkHeader(f.id, f.payload.length), f.payload]))),
        );
        const reader = new FrameReader();
        const out: Buffer[] = [];
        let at = 0;
        for (let i = 0; at < wire.length; i++) {
          const size = cuts[i % cuts.length]!;
          // A copy: the reader zeroes pieces it joins, and the wire is compared below.
          reader.push(Buffer.from(wire.subarray(at, at + size)));
          at += size;
          for (let frame = reader.next(); frame; frame = reader.next()) out.push(Buffer.from(frame));
        }
        expect(reader.bufferedBytes).toBe(0);
        expect(out).toHaveLength(frames.length);
        frames.forEach((f, i) => {
          if (f.kind === 'json') expect(out[i]!.toString()).toBe(f.text);
          else expect(parseFrame(out[i]!)).toEqual({ id: f.id, chunk: [Buffer.from(f.payload)] });
        });
      }),
    );
  });

  it('count a binary frame still arriving, so a connection can refuse it past its limit', () => {
    const reader = new FrameReader();
    reader.push(Buffer.concat([binaryChunkHeader(1, 1_000_000), Buffer.alloc(100)]));
    expect(reader.hasFrame).toBe(false);
    expect(reader.partialBytes).toBe(BINARY_FRAME_HEADER_BYTES + 100);
  });

  it('an unknown kind is a KeynodeError, not a crash', () => {
    const header = binaryChunkHeader(1, 0);
    header[1] = 9;
    expect(() => parseFrame(header)).toThrow(/unknown kind/);
  });
});
