import type { Socket } from 'node:net';

/**
 * Frames on the agent socket: one JSON document per line (UTF-8, '\n'-terminated). A frame
 * larger than MAX_FRAME_BYTES ends the connection rather than growing a buffer without bound.
 */
export const MAX_FRAME_BYTES = 128 * 1024 * 1024;
export const PROTOCOL_VERSION = 1;

export function onFrames(socket: Socket, handle: (frame: string) => void, tooLarge: () => void): void {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  socket.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let newline = chunk.indexOf(10); newline >= 0; newline = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, newline);
      const frame = pending.length ? Buffer.concat([...pending, piece]).toString('utf8') : piece.toString('utf8');
      pending = [];
      pendingBytes = 0;
      start = newline + 1;
      if (frame.length > 0) handle(frame);
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
      if (pendingBytes > MAX_FRAME_BYTES) {
        pending = [];
        pendingBytes = 0;
        tooLarge();
      }
    }
  });
}

export function writeFrame(socket: Socket, message: unknown): void {
  if (!socket.destroyed) socket.write(JSON.stringify(message) + '\n');
}
