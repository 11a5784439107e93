import { KeynodeError, type KeynodeErrorJSON } from '../errors.js';
import { BINARY_FRAME_HEADER_BYTES, BINARY_FRAME_MARK, BINARY_KIND_CHUNK } from './framing.js';

/**
 * What the frames on the agent socket hold (docs/api.md): a request
 * `{ v, id, method, token?, params }` and its reply `{ v, id, result }` or `{ v, id, error }`.
 * An error not tied to one request (busy, frame too large, timed out) has `id: null` and is
 * about the whole connection. Shared by the agent and every client (the native one too, which
 * must stay byte-compatible: field order below is the order on the wire).
 */
export const PROTOCOL_VERSION = 1;

export type RequestId = string | number;

export type Reply = { v: number; id: RequestId | null } & ({ result: unknown } | { error: KeynodeErrorJSON });

/**
 * A streamed reply (docs/api.md, "Streamed replies"): frames `{ v, id, chunk: [items] }`, then
 * `{ v, id, end: true }`, or `{ v, id, error }` at any point, which ends it. The items come
 * serialised (a JSON array): the agent measures them to bound its frames.
 */
export function encodeChunk(id: RequestId, itemsJson: string): string {
  return `{"v":${PROTOCOL_VERSION},"id":${JSON.stringify(id)},"chunk":${itemsJson}}\n`;
}

export function encodeEnd(id: RequestId): string {
  return `{"v":${PROTOCOL_VERSION},"id":${JSON.stringify(id)},"end":true}\n`;
}

export function resultReply(id: RequestId | null, result: unknown): Reply {
  return { v: PROTOCOL_VERSION, id, result };
}

export function errorReply(id: RequestId | null, error: KeynodeError): Reply {
  return { v: PROTOCOL_VERSION, id, error: error.toJSON() };
}

/**
 * The request line, with the token (when given) before the params, as clients always sent it.
 * Params come serialised: a caller that measures the frame first serialises a large value once.
 */
export function encodeRequest(id: number, method: string, paramsJson: string, token: string | undefined): string {
  const tokenField = token === undefined ? '' : `"token":${JSON.stringify(token)},`;
  return `{"v":${PROTOCOL_VERSION},"id":${id},"method":${JSON.stringify(method)},${tokenField}"params":${paramsJson}}\n`;
}

export type ParsedReply = { id: RequestId | null; result: unknown } | { id: RequestId | null; error: KeynodeError };

/**
 * A reply frame as the client reads it. Whatever the bytes, the outcome is a reply or a
 * KeynodeError: not JSON or not an object is ERR_INTERNAL, an unknown error code becomes
 * ERR_INTERNAL (KeynodeError.fromJSON), never a crash.
 */
export function parseReply(frame: Buffer): ParsedReply {
  return parseObject(parseJson(frame));
}

/** Frames of a streamed reply, as the client reads them. */
export type ParsedFrame = ParsedReply | { id: RequestId | null; chunk: unknown[] } | { id: RequestId | null; end: true };

/**
 * Any frame, a streamed reply's included: `chunk` (a list) and `end: true` are read before
 * `result`; an error wins over both. Whatever the bytes, a frame or a KeynodeError.
 */
export function parseFrame(frame: Buffer): ParsedFrame {
  if (frame[0] === BINARY_FRAME_MARK) {
    // A binary chunk (framing.ts): its payload is the one item, as bytes.
    if (frame.length < BINARY_FRAME_HEADER_BYTES || frame[1] !== BINARY_KIND_CHUNK)
      throw new KeynodeError('ERR_INTERNAL', 'the agent sent a binary frame of an unknown kind');
    return { id: frame.readUInt32BE(2), chunk: [frame.subarray(BINARY_FRAME_HEADER_BYTES)] };
  }
  const value = parseJson(frame);
  const reply = parseObject(value);
  if ('error' in reply) return reply;
  const fields = value as Record<string, unknown>;
  if (fields.chunk !== undefined) {
    if (!Array.isArray(fields.chunk)) throw new KeynodeError('ERR_INTERNAL', 'the agent sent a stream chunk that is not a list');
    return { id: reply.id, chunk: fields.chunk };
  }
  if (fields.end === true) return { id: reply.id, end: true };
  return reply;
}

function parseJson(frame: Buffer): unknown {
  let value: unknown;
  try {
    value = JSON.parse(frame.toString('utf8'));
  } catch {
    throw new KeynodeError('ERR_INTERNAL', 'the agent sent something that is not JSON');
  }
  return value;
}

function parseObject(value: unknown): ParsedReply {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new KeynodeError('ERR_INTERNAL', 'the agent sent a reply that is not an object');
  const reply = value as Record<string, unknown>;
  const id = typeof reply.id === 'number' || typeof reply.id === 'string' ? reply.id : null;
  if (reply.error !== undefined) return { id, error: KeynodeError.fromJSON(reply.error) };
  return { id, result: reply.result };
}
