import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from '../../src/crypto/random.js';
import { STREAM_SALT_BYTES, STREAM_TAG_BYTES, StreamReader, StreamWriter, streamKey, streamNonce } from '../../src/crypto/stream.js';
import { encodeBlob } from '../../src/vaults/gitObjects.js';
import { encodeLargeBlobManifest, parseLargeBlobManifest } from '../../src/vaults/largeBlobs.js';

/** Seal `data`, handed over in pieces cut at `cuts` (offsets), into chunks. */
function sealAll(key: ReturnType<typeof streamKey>, data: Uint8Array, chunkBytes: number, cuts: number[] = []): Buffer[] {
  const writer = new StreamWriter(key, { chunkBytes });
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < data.length)].sort((a, b) => a - b).concat(data.length)) {
    chunks.push(...writer.push(data.subarray(from, cut)));
    from = cut;
  }
  chunks.push(writer.finish());
  return chunks;
}

/** Open chunks in order, the final one as the last; null as soon as one fails. */
function openAll(key: ReturnType<typeof streamKey>, chunks: Buffer[], chunkBytes: number): Buffer | null {
  const reader = new StreamReader(key, { chunkBytes });
  const out: Buffer[] = [];
  for (let i = 0; i < chunks.length; i++) {
    const plaintext = reader.open(chunks[i]!, { last: i === chunks.length - 1 });
    if (plaintext === null) return null;
    out.push(plaintext);
  }
  return reader.finished ? Buffer.concat(out) : null;
}

const newKey = () => streamKey(randomBytes(32), randomBytes(STREAM_SALT_BYTES));

describe('chunked AEAD stream', () => {
  it('round-trips any value across chunk boundaries, however its pieces arrive', () => {
    const sizes = (chunk: number) => fc.oneof(fc.constantFrom(0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 3 * chunk + 1), fc.nat({ max: 8 * chunk }));
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }).chain((chunk) => fc.tuple(fc.constant(chunk), sizes(chunk), fc.array(fc.nat({ max: 8 * 64 }), { maxLength: 6 }))),
        ([chunkBytes, size, cuts]) => {
          const key = newKey();
          const data = randomBytes(size);
          const chunks = sealAll(key, data, chunkBytes, cuts);
          expect(chunks.length).toBe(Math.max(1, Math.ceil(size / chunkBytes)));
          for (const chunk of chunks.slice(0, -1)) expect(chunk.length).toBe(chunkBytes + STREAM_TAG_BYTES);
          const lastBytes = chunks.at(-1)!.length - STREAM_TAG_BYTES;
          expect(lastBytes === 0 ? size === 0 : lastBytes <= chunkBytes).toBe(true);
          expect(openAll(key, chunks, chunkBytes)?.equals(data)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('detects truncated, reordered, duplicated, flag-stripped and foreign chunks', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 32 }), fc.integer({ min: 2, max: 6 }), fc.nat({ max: 31 }), (chunkBytes, count, extra) => {
        // `count` chunks; the last one full-sized when extra is a multiple of chunkBytes.
        const size = (count - 1) * chunkBytes + 1 + (extra % chunkBytes);
        const key = newKey();
        const chunks = sealAll(key, randomBytes(size), chunkBytes);
        expect(chunks.length).toBe(count);
        // Cut at a chunk boundary: the new final chunk was not sealed as the last.
        expect(openAll(key, chunks.slice(0, -1), chunkBytes)).toBeNull();
        // Swapped neighbours, a duplicated chunk, a dropped middle chunk.
        const swapped = [...chunks];
        [swapped[0], swapped[1]] = [swapped[1]!, swapped[0]!];
        expect(openAll(key, swapped, chunkBytes)).toBeNull();
        expect(openAll(key, [chunks[0]!, ...chunks], chunkBytes)).toBeNull();
        expect(openAll(key, [chunks[0]!, ...chunks.slice(2)], chunkBytes)).toBeNull();
        // Extended after the last chunk: the last one is then opened as not last.
        expect(openAll(key, [...chunks, chunks.at(-1)!], chunkBytes)).toBeNull();
        // A chunk of another value at the same position.
        const other = newKey();
        const foreign = sealAll(other, randomBytes(size), chunkBytes);
        expect(openAll(key, [foreign[0]!, ...chunks.slice(1)], chunkBytes)).toBeNull();
        // Any flipped bit in any chunk.
        const target = chunks[extra % count]!;
        const flipped = Buffer.from(target);
        flipped[extra % flipped.length]! ^= 1 << (extra % 8);
        expect(
          openAll(
            key,
            chunks.map((c) => (c === target ? flipped : c)),
            chunkBytes,
          ),
        ).toBeNull();
      }),
      { numRuns: 100 },
    );
  });

  it('refuses a last chunk opened as not last even when it is full-sized (flag stripped)', () => {
    const key = newKey();
    const chunks = sealAll(key, randomBytes(32), 16);
    expect(chunks.map((c) => c.length)).toEqual([32, 32]);
    const reader = new StreamReader(key, { chunkBytes: 16 });
    expect(reader.open(chunks[0]!, { last: false })).not.toBeNull();
    expect(reader.open(chunks[1]!, { last: false })).toBeNull();
    expect(reader.finished).toBe(false);
    // The same chunk with the right flag opens: the failure was the flag, not the bytes.
    expect(reader.open(chunks[1]!, { last: true })).not.toBeNull();
    expect(reader.finished).toBe(true);
  });

  it('refuses an empty last chunk after others, and an empty stream opened as not last', () => {
    const key = newKey();
    const [empty] = sealAll(key, new Uint8Array(0), 16);
    expect(empty!.length).toBe(STREAM_TAG_BYTES);
    expect(new StreamReader(key, { chunkBytes: 16 }).open(empty!, { last: false })).toBeNull();
    expect(new StreamReader(key, { chunkBytes: 16 }).open(empty!, { last: true })?.length).toBe(0);
  });

  it('fails loudly on misuse', () => {
    const key = newKey();
    const writer = new StreamWriter(key, { chunkBytes: 4 });
    writer.push(Buffer.from('abc'));
    const last = writer.finish();
    expect(() => writer.push(Buffer.from('d'))).toThrow(/after finish/);
    expect(() => writer.finish()).toThrow(/twice/);
    const reader = new StreamReader(key, { chunkBytes: 4 });
    expect(reader.open(last, { last: true })?.toString()).toBe('abc');
    expect(() => reader.open(last, { last: true })).toThrow(/after the last/);
    expect(() => new StreamWriter(key, { chunkBytes: 0 })).toThrow(RangeError);
    expect(() => streamKey(randomBytes(32), randomBytes(16))).toThrow(RangeError);
  });
});

/** The `vectors` block of docs/chunked-values.md as label -> value. */
function vectors(): Map<string, string> {
  const text = fs.readFileSync(path.resolve(import.meta.dirname, '../../docs/chunked-values.md'), 'utf8');
  const block = /```vectors\n([\s\S]*?)```/.exec(text)![1]!;
  return new Map(
    block
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, 26).trim(), line.slice(26).trim()]),
  );
}

describe('docs/chunked-values.md test vectors', () => {
  it('seal, open and describe a value exactly as documented', () => {
    const v = vectors();
    expect(v.size).toBe(13);
    const hex = (label: string) => Buffer.from(v.get(label)!, 'hex');
    const secret = hex('secret');
    const salt = hex('salt');
    const key = streamKey(secret, salt);
    expect(key.export().toString('hex')).toBe(v.get('key'));
    expect(streamNonce(0, false).toString('hex')).toBe(v.get('nonce 0'));
    expect(streamNonce(2, true).toString('hex')).toBe(v.get('nonce 2 (last)'));
    const chunkBytes = Number(v.get('chunk size'));
    const plaintext = hex('plaintext');
    expect(plaintext.toString('ascii')).toBe('STREAM: sealed 16 bytes per chunk.');
    const chunks = sealAll(key, plaintext, chunkBytes, [5, 20]);
    expect(chunks.map((c) => c.toString('hex'))).toEqual([v.get('chunk 0'), v.get('chunk 1'), v.get('chunk 2')]);
    expect(openAll(key, [hex('chunk 0'), hex('chunk 1'), hex('chunk 2')], chunkBytes)?.equals(plaintext)).toBe(true);
    expect(sealAll(key, new Uint8Array(0), chunkBytes)[0]!.toString('hex')).toBe(v.get('empty value, chunk 0'));
    const oid = encodeBlob(plaintext).oid;
    expect(oid).toBe(v.get('blob id'));
    const manifest = encodeLargeBlobManifest({ oid, size: plaintext.length, chunkBytes, salt });
    expect(manifest.toString('hex')).toBe(v.get('manifest'));
    expect(parseLargeBlobManifest(manifest)).toEqual({ oid, size: 34, chunkBytes: 16, salt, chunkCount: 3 });
  });
});
