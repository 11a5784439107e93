import type { Socket } from 'node:net';

/**
 * Frames on the agent socket: one JSON document per line (UTF-8, '\n'-terminated). Limits on
 * frame size are the reader's caller's (they differ by side and by authentication); see
 * constants.ts and docs/agent-security.md. What a frame holds: protocol.ts.
 */

/**
 * A binary frame (docs/api.md, "Binary chunk frames"): a NUL byte (no JSON line starts with
 * one), a kind byte, the request id (u32 BE), the payload's length (u32 BE), the payload. It
 * carries a piece of a value without base64 or JSON: a streamed body chunk, a streamed reply's piece.
 */
export const BINARY_FRAME_MARK = 0x00;
export const BINARY_FRAME_HEADER_BYTES = 10;
/** The one kind so far: a chunk of the stream (reply) or body (request) with that id. */
export const BINARY_KIND_CHUNK = 0x01;

/** The header of a binary chunk frame for `id` with a payload of `length` bytes. */
export function binaryChunkHeader(id: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(BINARY_FRAME_HEADER_BYTES);
  header[0] = BINARY_FRAME_MARK;
  header[1] = BINARY_KIND_CHUNK;
  header.writeUInt32BE(id, 2);
  header.writeUInt32BE(length, 6);
  return header;
}

/** Can this id go in a binary frame's header? */
export const isBinaryId = (id: unknown): id is number => typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= 0xffff_ffff;

/**
 * Splits a byte stream into frames: JSON lines, and binary frames (a NUL first byte, then a
 * length-prefixed payload that may hold any byte). Complete frames queue until taken, so a
 * caller that stops taking (backpressure) can also stop reading; the frame still arriving is
 * counted so it can be refused before it grows past a limit. Bytes copied while joining pieces
 * are zeroed, and `clear()` zeroes everything held: frames may carry a password or secret values.
 */
export class FrameReader {
  private ready: Buffer[] = [];
  private readyStart = 0;
  private readyLength = 0;
  private partial: Buffer[] = [];
  private partialLength = 0;
  /** Inside a binary frame: bytes still to come (of its header, then of its payload). */
  private binaryNeed = 0;
  private binaryHeaderRead = false;
  /** The payload length the binary frame still arriving declared (0 when none is). */
  private binaryDeclared = 0;

  /** Add received bytes; returns how many frames they completed. */
  push(chunk: Buffer): number {
    let completed = 0;
    let start = 0;
    while (start < chunk.length) {
      if (this.binaryNeed === 0 && this.partialLength === 0 && chunk[start] === BINARY_FRAME_MARK) {
        this.binaryNeed = BINARY_FRAME_HEADER_BYTES;
        this.binaryHeaderRead = false;
      }
      if (this.binaryNeed > 0) {
        const take = Math.min(this.binaryNeed, chunk.length - start);
        this.partial.push(chunk.subarray(start, start + take));
        this.partialLength += take;
        this.binaryNeed -= take;
        start += take;
        if (this.binaryNeed > 0) break;
        if (!this.binaryHeaderRead) {
          this.binaryHeaderRead = true;
          const header = this.partial.length === 1 ? this.partial[0]! : Buffer.concat(this.partial);
          this.binaryNeed = header.readUInt32BE(6);
          this.binaryDeclared = this.binaryNeed;
          if (this.binaryNeed > 0) continue;
        }
        this.complete(this.partial.length === 1 ? this.partial[0]! : this.joinPartial(Buffer.alloc(0)));
        completed++;
        continue;
      }
      const newline = chunk.indexOf(10, start);
      if (newline < 0) {
        this.partial.push(chunk.subarray(start));
        this.partialLength += chunk.length - start;
        break;
      }
      const piece = chunk.subarray(start, newline);
      const frame = this.partial.length > 0 ? this.joinPartial(piece) : piece;
      start = newline + 1;
      completed++;
      if (frame.length > 0) this.complete(frame);
    }
    return completed;
  }

  private joinPartial(piece: Buffer): Buffer {
    const frame = Buffer.concat([...this.partial, piece]);
    for (const part of this.partial) part.fill(0);
    piece.fill(0);
    this.partial = [];
    this.partialLength = 0;
    return frame;
  }

  private complete(frame: Buffer): void {
    this.binaryDeclared = 0;
    this.partial = [];
    this.partialLength = 0;
    this.ready.push(frame);
    this.readyLength += frame.length;
  }

  /** The next complete frame (without its newline), or undefined. */
  next(): Buffer | undefined {
    if (this.readyStart >= this.ready.length) return undefined;
    const frame = this.ready[this.readyStart++]!;
    this.readyLength -= frame.length;
    if (this.readyStart === this.ready.length) {
      this.ready = [];
      this.readyStart = 0;
    }
    return frame;
  }

  get hasFrame(): boolean {
    return this.readyStart < this.ready.length;
  }

  /**
   * The whole size a binary frame still arriving declared in its header (header included), or 0:
   * a frame can be refused on its header, before its payload is held.
   */
  get declaredBytes(): number {
    return this.binaryDeclared === 0 ? 0 : BINARY_FRAME_HEADER_BYTES + this.binaryDeclared;
  }

  /** Bytes of the frame still arriving. */
  get partialBytes(): number {
    return this.partialLength;
  }

  /** Every byte held: complete frames not yet taken and the frame still arriving. */
  get bufferedBytes(): number {
    return this.readyLength + this.partialLength;
  }

  /** Drop (and zero) everything held. */
  clear(): void {
    for (let i = this.readyStart; i < this.ready.length; i++) this.ready[i]!.fill(0);
    for (const part of this.partial) part.fill(0);
    this.ready = [];
    this.readyStart = 0;
    this.readyLength = 0;
    this.partial = [];
    this.partialLength = 0;
    this.binaryNeed = 0;
    this.binaryDeclared = 0;
  }
}

/** The client's side: every complete frame to `handle`; a frame over `maxBytes` calls `tooLarge` once. */
export function onFrames(socket: Socket, maxBytes: number, handle: (frame: Buffer) => void, tooLarge: () => void): void {
  const reader = new FrameReader();
  let refused = false;
  socket.on('data', (chunk: Buffer) => {
    if (refused) return;
    reader.push(chunk);
    for (let frame = reader.next(); frame && !refused; frame = reader.next()) {
      if (frame.length > maxBytes) refused = true;
      else handle(frame);
    }
    if (refused || reader.partialBytes > maxBytes) {
      refused = true;
      reader.clear();
      tooLarge();
    }
  });
}
