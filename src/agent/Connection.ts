import type net from 'node:net';
import {
  AGENT_CONNECTION_IDLE_MS,
  AGENT_FRAME_TIMEOUT_MS,
  AGENT_MAX_CONNECTIONS,
  AGENT_MAX_FRAME_BYTES,
  AGENT_MAX_INFLIGHT_PER_CONNECTION,
  AGENT_MAX_PENDING_BYTES,
  AGENT_UNAUTHENTICATED_MAX_FRAME_BYTES,
  AGENT_WRITE_STALL_MS,
  STREAM_FRAME_MAX_BYTES,
  STREAM_FRAME_MAX_ITEMS,
  STREAM_MAX_QUEUED_BYTES,
  UPLOAD_CHUNK_MAX_BYTES,
} from '../constants.js';
import { KeynodeError, isKeynodeError, type ErrorCode } from '../errors.js';
import { BINARY_FRAME_HEADER_BYTES, FrameReader, binaryChunkHeader, isBinaryId } from '../ipc/framing.js';
import { encodeChunk, encodeEnd, errorReply, type Reply, type RequestId } from '../ipc/protocol.js';
import { RequestBodies } from './uploads.js';

/** Limits on what clients may make the agent hold (defaults in constants.ts; tests lower them). */
export interface AgentLimits {
  maxConnections: number;
  maxFrameBytes: number;
  unauthenticatedMaxFrameBytes: number;
  maxInflightPerConnection: number;
  maxPendingBytes: number;
  frameTimeoutMs: number;
  writeStallMs: number;
  connectionIdleMs: number;
}

export const DEFAULT_AGENT_LIMITS: Readonly<AgentLimits> = {
  maxConnections: AGENT_MAX_CONNECTIONS,
  maxFrameBytes: AGENT_MAX_FRAME_BYTES,
  unauthenticatedMaxFrameBytes: AGENT_UNAUTHENTICATED_MAX_FRAME_BYTES,
  maxInflightPerConnection: AGENT_MAX_INFLIGHT_PER_CONNECTION,
  maxPendingBytes: AGENT_MAX_PENDING_BYTES,
  frameTimeoutMs: AGENT_FRAME_TIMEOUT_MS,
  writeStallMs: AGENT_WRITE_STALL_MS,
  connectionIdleMs: AGENT_CONNECTION_IDLE_MS,
};

/** Why a stream ended: all sent, cancelled by its client, the connection gone, or an error sent. */
export type StreamOutcome = 'end' | 'cancelled' | 'closed' | KeynodeError;

/** The reason to abort a stream with when its client cancels it (it then ends with `end`). */
export const STREAM_CANCELLED = Symbol('stream cancelled');

/**
 * A reply the connection sends as a stream of frames (docs/api.md, "Streamed replies"). Aborting
 * `controller` stops it: with STREAM_CANCELLED it ends with `end`, with a KeynodeError with that
 * error. `finished` is called once, when nothing of the stream is left running.
 */
export interface StreamedReply {
  stream: {
    id: RequestId;
    /** The items in pages as the walk gives them; frames are cut from them by size. */
    pages: AsyncGenerator<unknown[], void, undefined>;
    controller: AbortController;
    finished: (outcome: StreamOutcome) => void;
  };
}

/** What streams did, for tests and the bench: frames and bytes written, items taken, the most queued. */
export const streamCounters = {
  frames: 0,
  itemsTaken: 0,
  largestFrameBytes: 0,
  /** The most bytes a streaming connection had waiting in its socket's buffer. */
  peakQueuedBytes: 0,
  reset(): void {
    this.frames = 0;
    this.itemsTaken = 0;
    this.largestFrameBytes = 0;
    this.peakQueuedBytes = 0;
  },
};

/** What a connection needs from the agent that serves it. */
export interface ConnectionHost {
  readonly limits: AgentLimits;
  /** Answer one frame (the host zeroes it once parsed); never rejects. Null: a body frame, taken, nothing to say. */
  serve(connection: Connection, frame: Buffer): Promise<Reply | StreamedReply | null>;
  /** Are all connections together holding more than the agent's budget? */
  underPressure(): boolean;
  /** Bytes were freed or a reply was taken: paused connections may go on. */
  released(): void;
  closed(connection: Connection): void;
}

const MiB = 1024 * 1024;
/** How long a refused client may still write before the socket closes, so it reads why. */
export const REFUSED_LINGER_MS = 1_000;
const describeBytes = (bytes: number) => (bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / 1024} KiB`);

/**
 * A page as the JSON of the item lists of its frames: at most STREAM_FRAME_MAX_ITEMS items and
 * about STREAM_FRAME_MAX_BYTES each (a single larger item goes alone). The usual page is one
 * JSON.stringify, not one per item.
 */
export function chunksOf(page: readonly unknown[]): string[] {
  if (page.length === 0) return [];
  const json = JSON.stringify(page);
  if ((Buffer.byteLength(json) <= STREAM_FRAME_MAX_BYTES && page.length <= STREAM_FRAME_MAX_ITEMS) || page.length === 1) return [json];
  const half = page.length >>> 1;
  return [...chunksOf(page.slice(0, half)), ...chunksOf(page.slice(half))];
}

/**
 * One client's connection as the agent serves it. Memory stays bounded whatever the client does:
 * a frame may not grow past its limit (far lower before the connection has authenticated); at
 * most `maxInflightPerConnection` requests run at once; and the socket is not read while frames
 * wait, while its replies are not taken (write backpressure), or while the agent as a whole holds
 * more than its budget (except for one small request at a time, so the owner is still served).
 * Frames that do not complete, replies nobody takes and idle connections time out (`sweep`).
 */
export class Connection {
  /** A request on this connection carried a valid token or unlocked the agent. */
  authenticated = false;
  private readonly reader = new FrameReader();
  private inflight = 0;
  private inflightBytes = 0;
  private lastActivity = Date.now();
  private frameStartedAt: number | null = null;
  private flushed = 0;
  private lastFlushAt = Date.now();
  private done = false;
  /** Streams running on this connection, by request id (for agent.cancel). */
  private readonly streams = new Map<RequestId, AbortController>();
  /** Streamed request bodies arriving on this connection, by request id (the agent feeds them). */
  readonly bodies: RequestBodies;

  constructor(
    readonly socket: net.Socket,
    private readonly host: ConnectionHost,
  ) {
    this.bodies = new RequestBodies();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => host.released());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.done = true;
      this.reader.clear();
      for (const body of this.bodies.values()) body.fail(new KeynodeError('ERR_AGENT_NOT_RUNNING', 'the client closed the connection during an upload'));
      this.bodies.clear();
      host.closed(this);
    });
  }

  /** Bytes this connection makes the agent hold: buffered and running requests, unsent replies. */
  get pendingBytes(): number {
    return this.reader.bufferedBytes + this.inflightBytes + this.socket.writableLength;
  }

  /** Nothing running, buffered or unsent: closing it loses nothing. */
  get idle(): boolean {
    return this.inflight === 0 && this.reader.bufferedBytes === 0 && this.socket.writableLength === 0;
  }

  /** Nothing running and nothing unsent; a frame may be arriving (a slow sender, maybe). */
  get quiet(): boolean {
    return this.inflight === 0 && this.socket.writableLength === 0;
  }

  get idleSince(): number {
    return this.lastActivity;
  }

  private get frameLimit(): number {
    return this.authenticated ? this.host.limits.maxFrameBytes : this.host.limits.unauthenticatedMaxFrameBytes;
  }

  private onData(chunk: Buffer): void {
    if (this.done) {
      chunk.fill(0);
      return;
    }
    const now = Date.now();
    this.lastActivity = now;
    const completed = this.reader.push(chunk);
    if (this.reader.partialBytes === 0) this.frameStartedAt = null;
    else if (completed > 0 || this.frameStartedAt === null) this.frameStartedAt = now;
    // Start what came first: a request ahead of its body's chunks authenticates the connection.
    this.pump();
    if (this.done || this.reader.hasFrame) return; // paused (the frame in progress grows no more): checked on the next read
    if (this.reader.partialBytes > this.frameLimit) return this.tooLarge();
    // A binary frame is refused on its header: its payload is never held.
    const declared = this.reader.declaredBytes;
    if (declared > this.frameLimit) return this.tooLarge();
    if (declared > BINARY_FRAME_HEADER_BYTES + UPLOAD_CHUNK_MAX_BYTES) {
      this.refuse('ERR_INVALID_REQUEST', `invalid request: a binary frame is limited to ${describeBytes(UPLOAD_CHUNK_MAX_BYTES)} of payload`);
    }
  }

  private tooLarge(): void {
    const limit = this.frameLimit;
    const why = this.authenticated ? '' : ' before the connection has authenticated';
    this.refuse('ERR_INVALID_REQUEST', `invalid request: frame too large (the limit is ${describeBytes(limit)}${why})`);
  }

  /** Start what may start, and read on only when nothing is waiting to be taken. */
  pump(): void {
    if (this.done) return;
    const limits = this.host.limits;
    // Uploads waiting on their bodies take no slot from the chunk frames that feed them: four at
    // once would otherwise starve their own chunks until the stall timeout (RequestBodies caps them).
    const running = () => this.inflight - this.bodies.running;
    while (this.reader.hasFrame && running() < limits.maxInflightPerConnection && !this.socket.writableNeedDrain) {
      // Under the agent-wide budget, a connection still gets one request at a time.
      if ((running() > 0 || this.socket.writableLength > 0) && this.host.underPressure()) break;
      const frame = this.reader.next()!;
      if (frame.length > this.frameLimit) {
        frame.fill(0);
        return this.tooLarge();
      }
      this.start(frame);
    }
    const bigPartial = this.reader.partialBytes > limits.unauthenticatedMaxFrameBytes && this.host.underPressure();
    if (this.reader.hasFrame || bigPartial) this.socket.pause();
    else this.socket.resume();
  }

  private start(frame: Buffer): void {
    const bytes = frame.length;
    this.inflight++;
    this.inflightBytes += bytes;
    void this.host.serve(this, frame).then(async (reply) => {
      if (reply === null) {
        // a body chunk, taken by its writer
      } else if ('stream' in reply) await this.sendStream(reply.stream);
      else this.send(reply);
      this.inflight--;
      this.inflightBytes -= bytes;
      this.lastActivity = Date.now();
      this.host.released();
    });
  }

  /** Stop a stream of this connection (agent.cancel); false when none runs under that id. */
  cancel(id: RequestId): boolean {
    const controller = this.streams.get(id);
    controller?.abort(STREAM_CANCELLED);
    return controller !== undefined;
  }

  private get writable(): boolean {
    return !this.done && !this.socket.destroyed && !this.socket.writableEnded;
  }

  /**
   * Send a stream's pages in bounded frames, taking the next page only while the socket takes
   * what was written (backpressure: a client that stops reading stops the walk, and the write
   * stall rule in `sweep` ends it). Whatever ends the stream, the generator is closed, so the
   * work behind it stops and leaves nothing behind.
   */
  private async sendStream(stream: StreamedReply['stream']): Promise<void> {
    const { id, pages, controller } = stream;
    this.streams.set(id, controller);
    let outcome: StreamOutcome = 'end';
    let exhausted = false;
    try {
      for (;;) {
        if (!this.writable) {
          outcome = 'closed';
          break;
        }
        if (controller.signal.aborted) break;
        const next = await pages.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        streamCounters.itemsTaken += next.value.length;
        if (next.value[0] instanceof Uint8Array && isBinaryId(id)) {
          // Pieces of a value: binary frames, no base64 or JSON (docs/api.md, "Binary chunk frames").
          for (const piece of next.value as Uint8Array[]) {
            if (
              !(await this.writeStreamFrame(
                [binaryChunkHeader(id, piece.length), Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength)],
                controller.signal,
              ))
            )
              break;
          }
          continue;
        }
        for (const itemsJson of chunksOf(next.value.map((item) => (item instanceof Uint8Array ? Buffer.from(item).toString('base64') : item)))) {
          if (!(await this.writeStreamFrame(encodeChunk(id, itemsJson), controller.signal))) break; // the loop notices why
        }
      }
      if (controller.signal.aborted) {
        const reason: unknown = controller.signal.reason;
        outcome = reason === STREAM_CANCELLED ? 'cancelled' : isKeynodeError(reason) ? reason : new KeynodeError('ERR_INTERNAL', 'internal error in the agent');
      }
      if (outcome === 'end' || outcome === 'cancelled') await this.writeStreamFrame(encodeEnd(id), null);
      else if (outcome !== 'closed') this.send(errorReply(id, outcome));
    } catch (error) {
      exhausted = true; // a generator that threw is finished
      outcome = isKeynodeError(error) ? error : new KeynodeError('ERR_INTERNAL', 'internal error in the agent');
      this.send(errorReply(id, outcome));
    } finally {
      this.streams.delete(id);
      if (!exhausted) await pages.return(undefined).catch(() => undefined);
      stream.finished(outcome);
    }
  }

  /** Write one frame; when the socket's buffer is full, wait until it drains, closes or the stream is aborted. False if the stream cannot go on. */
  private async writeStreamFrame(frame: string | Buffer[], signal: AbortSignal | null): Promise<boolean> {
    if (!this.writable) return false;
    const parts = typeof frame === 'string' ? [Buffer.from(frame, 'utf8')] : frame;
    streamCounters.frames++;
    streamCounters.largestFrameBytes = Math.max(
      streamCounters.largestFrameBytes,
      parts.reduce((sum, part) => sum + part.length, 0),
    );
    // Our own copy of a JSON frame is zeroed once sent; a value's piece may be a cached object's bytes: left alone.
    if (typeof frame === 'string') this.socket.write(parts[0]!, () => parts[0]!.fill(0));
    else for (const part of parts) this.socket.write(part);
    streamCounters.peakQueuedBytes = Math.max(streamCounters.peakQueuedBytes, this.socket.writableLength);
    // Past the bound the write returned false, so 'drain' comes once the socket has sent it all.
    if (this.socket.writableLength > STREAM_MAX_QUEUED_BYTES && signal !== null && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.socket.off('drain', done);
          this.socket.off('close', done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.socket.on('drain', done);
        this.socket.on('close', done);
        signal.addEventListener('abort', done);
      });
    }
    return this.writable && !(signal?.aborted ?? false);
  }

  private send(reply: Reply): void {
    if (this.done || this.socket.destroyed || this.socket.writableEnded) return;
    // Bytes we own and zero once sent (a string would be copied into memory nobody clears).
    const bytes = Buffer.from(JSON.stringify(reply) + '\n', 'utf8');
    this.socket.write(bytes, () => bytes.fill(0));
  }

  /**
   * Reply with an error not tied to a request and close. What the client still sends is read and
   * discarded for a moment: a client busy writing would otherwise fail on a reset connection
   * before it reads the reason.
   */
  refuse(code: ErrorCode, message: string): void {
    if (this.done) return;
    this.done = true;
    this.reader.clear();
    this.frameStartedAt = null;
    this.socket.resume();
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.socket.end(JSON.stringify(errorReply(null, new KeynodeError(code, message))) + '\n');
    this.socket.once('finish', () => setTimeout(() => this.socket.destroy(), REFUSED_LINGER_MS).unref());
  }

  /** Enforce the timeouts; called periodically by the agent. */
  sweep(now: number): void {
    const limits = this.host.limits;
    const flushed = this.socket.bytesWritten - this.socket.writableLength;
    if (flushed !== this.flushed || this.socket.writableLength === 0) {
      this.flushed = flushed;
      this.lastFlushAt = now;
    }
    if (this.socket.writableLength > 0 && now - this.lastFlushAt > limits.writeStallMs) {
      this.socket.destroy(); // nobody takes the replies: nothing more can be said to it
    } else if (!this.done && this.frameStartedAt !== null && now - this.frameStartedAt > limits.frameTimeoutMs) {
      this.refuse('ERR_INVALID_REQUEST', `invalid request: a frame was not completed within ${limits.frameTimeoutMs / 1000} s`);
    } else if (this.idle && now - this.lastActivity > limits.connectionIdleMs) {
      this.done = true;
      this.socket.end();
    }
  }
}
