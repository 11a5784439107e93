import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AGENT_MAX_FRAME_BYTES, AGENT_UNAUTHENTICATED_MAX_FRAME_BYTES, CLIENT_STREAM_MAX_QUEUED_FRAMES, UPLOAD_CHUNK_BYTES } from '../constants.js';
import type { MethodName, ParamsOf, ResultOf, Session } from '../api/contract.js';
import { STREAM_FIELDS, STREAM_RESULTS, isStreamMethod, type StreamItems, type StreamMethod, type UploadMethod } from '../api/streams.js';
import { KeynodeError } from '../errors.js';
import { binaryChunkHeader, onFrames } from '../ipc/framing.js';
import { encodeEnd, encodeRequest, parseFrame } from '../ipc/protocol.js';
import type { Password } from '../node/KeynodeNode.js';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** Set for a streamed reply: its item frames, until `end` (resolve) or an error (reject). */
  chunk?: (items: unknown[]) => void;
}

/** Replies may carry a whole vault; bigger than any request frame, still bounded. */
const MAX_REPLY_BYTES = 4 * AGENT_MAX_FRAME_BYTES;

/**
 * Is this socket one our own agent made? It must be a socket owned by us, in a directory owned
 * by us that nobody else may write (so nobody else could have put it there or swap it). Checked
 * before anything, the password included, is sent. The peer's credentials (SO_PEERCRED) are
 * not reachable from Node; see docs/agent-security.md.
 */
function checkSocketOwner(socketPath: string): 'ok' | 'absent' {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return 'absent';
  }
  if (!stat.isSocket()) return 'absent'; // nothing of an agent's: the node is opened in process
  const uid = process.getuid?.();
  if (uid === undefined) return 'ok'; // not POSIX: nothing to compare
  const dir = path.dirname(socketPath);
  const dirStat = fs.statSync(dir);
  const refuse = (why: string) => {
    throw new KeynodeError('ERR_IO', `refusing the agent socket ${socketPath}: ${why}; if no keynode agent of yours runs, remove it`, { socket: socketPath });
  };
  if (stat.uid !== uid) refuse(`it belongs to uid ${stat.uid}, not to you (uid ${uid})`);
  if ((stat.mode & 0o077) !== 0) refuse(`its mode ${(stat.mode & 0o777).toString(8)} lets other users connect`);
  if (dirStat.uid !== uid) refuse(`its directory ${dir} belongs to uid ${dirStat.uid}, not to you`);
  if ((dirStat.mode & 0o022) !== 0) refuse(`its directory ${dir} is writable by other users`);
  return 'ok';
}

/** One connection to an agent's socket; requests may be pipelined and are matched by id. */
export class AgentConnection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError: KeynodeError | null = null;
  /** One of our requests was authenticated: the agent now takes large frames from us. */
  private authenticated = false;

  private constructor(private readonly socket: net.Socket) {
    onFrames(
      socket,
      MAX_REPLY_BYTES,
      (frame) => this.onFrame(frame),
      () => this.fail(new KeynodeError('ERR_INVALID_REQUEST', 'the agent sent an oversized frame')),
    );
    socket.on('error', () => this.fail(new KeynodeError('ERR_AGENT_NOT_RUNNING', 'the connection to the agent failed')));
    socket.on('close', () => this.fail(new KeynodeError('ERR_AGENT_NOT_RUNNING', 'the agent closed the connection')));
  }

  /** Connect, or null when no agent answers (no socket, or one left by a killed agent). Throws for a socket that is not ours. */
  static connect(socketPath: string): Promise<AgentConnection | null> {
    if (checkSocketOwner(socketPath) === 'absent') return Promise.resolve(null);
    return new Promise((resolve) => {
      const socket = net.connect(socketPath);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        resolve(new AgentConnection(socket));
      });
      socket.once('error', () => resolve(null));
    });
  }

  private onFrame(frame: Buffer): void {
    let reply;
    try {
      reply = parseFrame(frame);
    } catch (error) {
      return this.fail(error as KeynodeError);
    }
    // An error for no request (busy, frame too large, timed out) is about the whole connection.
    if (reply.id === null && 'error' in reply) return this.fail(reply.error);
    const waiter = typeof reply.id === 'number' ? this.pending.get(reply.id) : undefined;
    if (!waiter) return;
    if ('chunk' in reply) {
      if (waiter.chunk) return waiter.chunk(reply.chunk);
      return this.fail(new KeynodeError('ERR_INTERNAL', 'the agent streamed a reply that is not a stream'));
    }
    this.pending.delete(reply.id as number);
    if ('error' in reply) waiter.reject(reply.error);
    else if ('end' in reply) waiter.resolve(undefined);
    else waiter.resolve(reply.result);
  }

  private fail(error: KeynodeError): void {
    this.closedError ??= error;
    for (const waiter of this.pending.values()) waiter.reject(this.closedError);
    this.pending.clear();
    this.socket.destroy();
  }

  private send(method: MethodName, paramsJson: string, token: string | undefined, chunk?: (items: unknown[]) => void, id = this.nextId++): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve: (value) => {
          // Mirrors the agent: an unlock or a call it checked the token of (agent.* take none).
          if (method === 'session.unlock' || (token !== undefined && !method.startsWith('agent.'))) this.authenticated = true;
          resolve(value);
        },
        reject,
        ...(chunk ? { chunk } : {}),
      });
      this.socket.write(encodeRequest(id, method, paramsJson, token));
    });
  }

  /** A streamed method's whole result, as `request` gives it. */
  private async collect<M extends StreamMethod>(method: M, params: ParamsOf<M>, token: string | undefined): Promise<ResultOf<M>> {
    const items: Array<StreamItems[M]> = [];
    for await (const page of this.stream(method, params, token)) for (const item of page) items.push(item);
    return (STREAM_RESULTS[method] as (params: ParamsOf<M>, items: Array<StreamItems[M]>) => ResultOf<M>)(params, items);
  }

  /**
   * A streamed method's items as they come, a frame's worth at a time (docs/api.md, "Streamed replies"). At most
   * CLIENT_STREAM_MAX_QUEUED_FRAMES frames wait for the reader; past that the socket is paused,
   * so a slow reader slows the agent instead of filling this process. Stopping early (break,
   * return) cancels the stream on the agent (agent.cancel) and drops what still arrives.
   */
  async *stream<M extends StreamMethod>(method: M, params: ParamsOf<M>, token?: string): AsyncGenerator<Array<StreamItems[M]>, void, undefined> {
    const frames: unknown[][] = [];
    let wake: (() => void) | null = null;
    let finished = false;
    let failure: unknown = null;
    let whole: unknown = undefined;
    let paused = false;
    let abandoned = false;
    const notify = () => {
      const waiting = wake;
      wake = null;
      waiting?.();
    };
    const id = this.nextId++;
    const settled = this.send(
      method,
      JSON.stringify(params),
      token,
      (items) => {
        if (abandoned) return;
        frames.push(items);
        if (frames.length >= CLIENT_STREAM_MAX_QUEUED_FRAMES && !paused) {
          paused = true;
          this.socket.pause();
        }
        notify();
      },
      id,
    ).then(
      (result) => {
        finished = true;
        whole = result; // undefined after `end`; a whole result from an agent that does not stream
        notify();
      },
      (error: unknown) => {
        finished = true;
        failure = error;
        notify();
      },
    );
    try {
      for (;;) {
        const items = frames.shift();
        if (items) {
          if (paused && frames.length < CLIENT_STREAM_MAX_QUEUED_FRAMES / 2) {
            paused = false;
            this.socket.resume();
          }
          yield items as Array<StreamItems[M]>;
          continue;
        }
        if (finished) break;
        await new Promise<void>((resolve) => (wake = resolve));
      }
      if (failure !== null) throw failure as Error;
      if (whole !== undefined) {
        // An agent started before streams (still running after an upgrade) answers with the whole result.
        const items = (whole as Record<string, unknown> | null)?.[STREAM_FIELDS[method] as string];
        if (!Array.isArray(items)) throw new KeynodeError('ERR_INTERNAL', 'the agent sent a malformed reply');
        yield items as Array<StreamItems[M]>;
      }
    } finally {
      if (!finished) {
        abandoned = true;
        frames.length = 0;
        if (paused) this.socket.resume();
        // Fire and forget: the reply (or the connection closing) settles it; nothing waits on it.
        this.send('agent.cancel', JSON.stringify({ id }), undefined).catch(() => undefined);
        void settled;
      }
    }
  }

  /**
   * A method with a streamed request body (docs/api.md, "Streamed request bodies"): the params,
   * then each piece of `source` as a chunk frame, then `end`; one reply. Writes wait for the
   * socket to drain, so the agent's read backpressure paces this process. An error reply before
   * the end stops the sending at once. The connection must have authenticated (chunks are large).
   */
  async upload<M extends UploadMethod>(method: M, params: ParamsOf<M>, source: AsyncIterable<Uint8Array>, token: string | undefined): Promise<ResultOf<M>> {
    const id = this.nextId++;
    let settled = false;
    const reply = this.send(method, JSON.stringify(params), token, undefined, id).finally(() => {
      settled = true;
    });
    // An early reply (an error: no such vault, locked, wrong size) ends the sending, even while the
    // source waits (a stalled pipe): its next read is raced against the reply, and it is left behind.
    // (Not Promise.race against the reply: each race would keep its piece reachable from the
    // reply's reactions until the end, the whole value in memory.)
    let onReply: (() => void) | null = null;
    void reply.then(
      () => onReply?.(),
      () => onReply?.(),
    );
    const pieces = source[Symbol.asyncIterator]();
    let exhausted = false;
    try {
      while (!settled && !this.closedError) {
        const next = await new Promise<IteratorResult<Uint8Array> | null>((resolve, reject) => {
          onReply = () => resolve(null);
          pieces.next().then(resolve, reject);
        });
        onReply = null;
        if (next === null) break;
        if (next.done) {
          exhausted = true;
          break;
        }
        const piece = next.value;
        for (let at = 0; at < piece.length && !settled && !this.closedError; at += UPLOAD_CHUNK_BYTES) {
          // Binary frames (framing.ts): the bytes as they are, no base64 or JSON; zeroed once sent.
          const part = Buffer.from(piece.buffer, piece.byteOffset + at, Math.min(UPLOAD_CHUNK_BYTES, piece.length - at));
          this.socket.write(binaryChunkHeader(id, part.length));
          if (!this.socket.write(part, () => part.fill(0))) await this.drained();
        }
      }
    } finally {
      if (!exhausted) void pieces.return?.(undefined)?.catch(() => undefined);
    }
    if (!settled && !this.closedError) this.socket.write(encodeEnd(id));
    return (await reply) as ResultOf<M>;
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** One call of the owner API (api/contract.ts); the result is typed by the contract. */
  async request<M extends MethodName>(method: M, params: ParamsOf<M>, token?: string): Promise<ResultOf<M>> {
    // Narrowing `method` does not narrow M: the params and the result are M's, as the contract says.
    if (isStreamMethod(method)) return (await this.collect<StreamMethod>(method, params as ParamsOf<StreamMethod>, token)) as ResultOf<M>;
    // The agent takes large frames only on a connection that has authenticated: do so first
    // (without a valid token this fails as the request itself would, and the caller signs in).
    const paramsJson = JSON.stringify(params);
    if (!this.authenticated && Buffer.byteLength(paramsJson) + 256 > AGENT_UNAUTHENTICATED_MAX_FRAME_BYTES) {
      await this.send('node.status', '{}', token);
    }
    return (await this.send(method, paramsJson, token)) as ResultOf<M>;
  }

  /**
   * `session.unlock`: bytes as `passwordBase64` (exactly what argon2 gets), a string as
   * `password`. A Uint8Array is zeroed once sent.
   */
  async unlock(password: Password): Promise<Session> {
    let params: { password: string } | { passwordBase64: string };
    if (typeof password === 'string') {
      params = { password };
    } else {
      params = { passwordBase64: Buffer.from(password.buffer, password.byteOffset, password.byteLength).toString('base64') };
      password.fill(0);
    }
    return this.request('session.unlock', params);
  }

  close(): void {
    this.socket.end();
    this.socket.unref();
  }
}
