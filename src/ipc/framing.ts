import type { Socket } from 'node:net';

/**
 * Frames on the agent socket: one JSON document per line (UTF-8, '\n'-terminated). Limits on
 * frame size are the reader's caller's (they differ by side and by authentication); see
 * constants.ts and docs/agent-security.md. What a frame holds: protocol.ts.
 */

/**
 * Splits a byte stream into frames. Complete frames queue until taken, so a caller that stops
 * taking (backpressure) can also stop reading; the frame still arriving is counted so it can be
 * refused before it grows past a limit. Bytes copied while joining pieces are zeroed, and
 * `clear()` zeroes everything held: frames may carry a password or secret values.
 */
export class FrameReader {
  private ready: Buffer[] = [];
  private readyStart = 0;
  private readyLength = 0;
  private partial: Buffer[] = [];
  private partialLength = 0;

  /** Add received bytes; returns how many frames they completed. */
  push(chunk: Buffer): number {
    let completed = 0;
    let start = 0;
    for (let newline = chunk.indexOf(10); newline >= 0; newline = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, newline);
      let frame = piece;
      if (this.partial.length > 0) {
        frame = Buffer.concat([...this.partial, piece]);
        for (const part of this.partial) part.fill(0);
        piece.fill(0);
        this.partial = [];
        this.partialLength = 0;
      }
      start = newline + 1;
      completed++;
      if (frame.length > 0) {
        this.ready.push(frame);
        this.readyLength += frame.length;
      }
    }
    if (start < chunk.length) {
      this.partial.push(chunk.subarray(start));
      this.partialLength += chunk.length - start;
    }
    return completed;
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
