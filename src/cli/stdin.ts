import fs from 'node:fs';
import { SECRET_VALUE_MAX_BYTES } from '../constants.js';
import { KeynodeError, fromSystemError } from '../errors.js';

function valueTooLarge(source: string): KeynodeError {
  return new KeynodeError('ERR_INVALID_ARGUMENT', `the value from ${source} is too large: values are limited to ${SECRET_VALUE_MAX_BYTES / 1024 / 1024} MiB`);
}

/** All of stdin, as bytes; stops reading (and fails) past `maxBytes`. */
export async function readStdin(options: { maxBytes?: number } = {}): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    length += (chunk as Buffer).length;
    if (options.maxBytes !== undefined && length > options.maxBytes) {
      for (const held of chunks) held.fill(0);
      throw valueTooLarge('stdin');
    }
  }
  return Buffer.concat(chunks);
}

/** A secret value from stdin, refused early past SECRET_VALUE_MAX_BYTES. */
export function readValueFromStdin(): Promise<Buffer> {
  return readStdin({ maxBytes: SECRET_VALUE_MAX_BYTES });
}

/** A secret value from a file (exact bytes), refused before it is read past SECRET_VALUE_MAX_BYTES (pipes and devices too). */
export function readValueFile(file: string): Buffer {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(1024 * 1024);
      const read = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (read === 0) break;
      chunks.push(chunk.subarray(0, read));
      length += read;
      if (length > SECRET_VALUE_MAX_BYTES) {
        for (const held of chunks) held.fill(0);
        throw valueTooLarge(file);
      }
    }
    const value = Buffer.concat(chunks, length);
    for (const held of chunks) held.fill(0);
    return value;
  } catch (error) {
    throw fromSystemError(error, `reading ${file}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
