import { describe, expect, it } from 'vitest';
import { FrameReader } from '../../src/ipc/framing.js';

describe('FrameReader', () => {
  it('splits a byte stream into frames, whatever the chunking, and counts the frame still arriving', () => {
    const reader = new FrameReader();
    expect(reader.push(Buffer.from('{"a":1}\n{"b"'))).toBe(1);
    expect(reader.partialBytes).toBe(4);
    expect(reader.push(Buffer.from(':2}'))).toBe(0);
    expect(reader.partialBytes).toBe(7);
    expect(reader.push(Buffer.from('\n\n{"c":3}\n'))).toBe(3); // an empty line is no frame
    expect(reader.bufferedBytes).toBe(7 + 7 + 7);
    const frames: string[] = [];
    for (let frame = reader.next(); frame; frame = reader.next()) frames.push(frame.toString());
    expect(frames).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
    expect(reader.hasFrame).toBe(false);
    expect(reader.bufferedBytes).toBe(0);
  });

  it('zeroes the pieces it joined and everything it drops', () => {
    const reader = new FrameReader();
    const first = Buffer.from('{"password":"hun');
    const second = Buffer.from('ter2"}\n{"next":"sec');
    reader.push(first);
    reader.push(second);
    expect(first.every((byte) => byte === 0)).toBe(true); // joined into the frame, then wiped
    expect(reader.next()!.toString()).toBe('{"password":"hunter2"}');
    const third = Buffer.from('ret"}\n');
    reader.push(third);
    reader.clear();
    expect(second.subarray(second.indexOf('{"next"')).every((byte) => byte === 0)).toBe(true);
    expect(third.every((byte) => byte === 0 || byte === 0x0a)).toBe(true); // only the newline is left
    expect(reader.bufferedBytes).toBe(0);
    expect(reader.next()).toBeUndefined();
  });
});
