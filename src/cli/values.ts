import fs from 'node:fs';
import type { Readable } from 'node:stream';
import type { WriteResult } from '../vaults/Vault.js';
import type { KeynodeClient } from '../client/AgentClient.js';
import { pieceBytes } from '../api/streams.js';
import { LARGE_BLOB_THRESHOLD_BYTES, UPLOAD_CHUNK_BYTES } from '../constants.js';
import { fromSystemError } from '../errors.js';

/**
 * Secret values of any size between the CLI and a client, never whole in memory past the large
 * value threshold: `secrets set` from a file or stdin streams the bytes (secrets.setStream) and
 * `secrets get` writes pieces to stdout as they come (secrets.getStream). A value small enough to
 * be one blob still goes as one `secrets.set`, exactly as before (old agents, the native client's
 * wire format).
 */

/** Where a value is read from: its bytes in pieces, and its size when the source knows it (a regular file). */
export interface ValueInput {
  size: number | undefined;
  pieces: AsyncIterable<Buffer>;
  close(): void;
}

/** Pieces of about UPLOAD_CHUNK_BYTES from any readable (a pipe gives 64 KiB ones); copies are zeroed. */
async function* coalesce(readable: AsyncIterable<Buffer>): AsyncGenerator<Buffer, void, undefined> {
  let held: Buffer[] = [];
  let heldBytes = 0;
  const flush = () => {
    const piece = held.length === 1 ? held[0]! : Buffer.concat(held, heldBytes);
    if (held.length > 1) for (const part of held) part.fill(0);
    held = [];
    heldBytes = 0;
    return piece;
  };
  for await (const chunk of readable) {
    held.push(chunk);
    heldBytes += chunk.length;
    if (heldBytes >= UPLOAD_CHUNK_BYTES) yield flush();
  }
  if (heldBytes > 0) yield flush();
}

/** A value file (exact bytes): its size from fstat when it is a regular file (a FIFO's is not known). */
export async function openValueFile(file: string): Promise<ValueInput> {
  let handle: fs.promises.FileHandle;
  let stat: fs.Stats;
  try {
    handle = await fs.promises.open(file, 'r');
    stat = await handle.stat();
  } catch (error) {
    throw fromSystemError(error, `reading ${file}`);
  }
  const stream = handle.createReadStream({ highWaterMark: UPLOAD_CHUNK_BYTES });
  return {
    size: stat.isFile() ? stat.size : undefined,
    pieces: coalesce(wrapErrors(stream, file)),
    close: () => stream.destroy(),
  };
}

/** Stdin: its size when it is a regular file (`< file`), else read to its end. */
export function stdinValue(): ValueInput {
  let size: number | undefined;
  try {
    const stat = fs.fstatSync(0);
    if (stat.isFile()) size = stat.size;
  } catch {
    /* not a file: read to the end */
  }
  return { size, pieces: coalesce(wrapErrors(process.stdin, 'stdin')), close: () => undefined };
}

async function* wrapErrors(readable: Readable, what: string): AsyncGenerator<Buffer, void, undefined> {
  try {
    for await (const chunk of readable) yield chunk as Buffer;
  } catch (error) {
    throw fromSystemError(error, `reading ${what}`);
  }
}

/**
 * Store a value read from `input`: up to the large value threshold in one `secrets.set`, beyond
 * it as a streamed upload of the bytes already read and the rest. The declared size (a regular
 * file's) is checked by the node: a file that changes length meanwhile stores nothing.
 */
export async function setValue(
  client: KeynodeClient,
  ref: { vault: string; path: string; message?: string },
  input: ValueInput,
): Promise<{ bytes: number; result: WriteResult }> {
  const iterator = input.pieces[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headBytes = 0;
  let done = false;
  try {
    while (headBytes <= LARGE_BLOB_THRESHOLD_BYTES) {
      const next = await iterator.next();
      if (next.done) {
        done = true;
        break;
      }
      head.push(next.value);
      headBytes += next.value.length;
    }
    if (done && (input.size === undefined || input.size <= LARGE_BLOB_THRESHOLD_BYTES)) {
      const value = Buffer.concat(head, headBytes);
      for (const part of head) part.fill(0);
      const result = await client.call('secrets.set', { vault: ref.vault, path: ref.path, value: value.toString('base64'), message: ref.message });
      value.fill(0);
      return { bytes: headBytes, result };
    }
    let bytes = 0;
    const all = async function* (): AsyncGenerator<Buffer, void, undefined> {
      for (const part of head.splice(0)) {
        bytes += part.length;
        yield part;
      }
      for (;;) {
        const next = done ? { done: true as const, value: undefined } : await iterator.next();
        if (next.done) return;
        bytes += next.value.length;
        yield next.value;
      }
    };
    const params = {
      vault: ref.vault,
      path: ref.path,
      ...(input.size !== undefined ? { size: input.size } : {}),
      ...(ref.message !== undefined ? { message: ref.message } : {}),
    };
    const result = await client.upload('secrets.setStream', params, all());
    return { bytes, result };
  } finally {
    for (const part of head) part.fill(0);
    await iterator.return?.();
    input.close();
  }
}

/** Write a value to stdout as its pieces come, waiting for stdout to take each (a slow pipe slows the agent). */
export async function writeValueToStdout(client: KeynodeClient, ref: { vault: string; path: string; version?: string }): Promise<void> {
  for await (const page of client.stream('secrets.getStream', { vault: ref.vault, path: ref.path, version: ref.version })) {
    for (const piece of page) {
      const bytes = pieceBytes(piece);
      if (!process.stdout.write(bytes)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
    }
  }
}
