import fs from 'node:fs';
import net from 'node:net';
import { METHODS, isMethodName, isOwnerMethod, type AgentMethod, type AgentStatus, type ParamsOf, type ResultOf, type Session } from '../api/contract.js';
import { decodeBodyPiece, dispatch, dispatchStream, dispatchUpload } from '../api/handlers.js';
import { validateRequest } from '../api/schema.js';
import { isStreamMethod, isUploadMethod, type UploadMethod } from '../api/streams.js';
import { UPLOAD_CHUNK_MAX_BYTES } from '../constants.js';
import { KeynodeError, isKeynodeError } from '../errors.js';
import { BINARY_FRAME_HEADER_BYTES, BINARY_FRAME_MARK, BINARY_KIND_CHUNK } from '../ipc/framing.js';
import { socketPath } from '../ipc/paths.js';
import { errorReply, resultReply, PROTOCOL_VERSION, type Reply, type RequestId } from '../ipc/protocol.js';
import type { KeynodeNode, Password } from '../node/KeynodeNode.js';
import { NodeLifecycle } from '../node/lifecycle.js';
import { Connection, REFUSED_LINGER_MS, DEFAULT_AGENT_LIMITS, type AgentLimits, type ConnectionHost, type StreamedReply } from './Connection.js';
import { IdleTimer, NodeWork } from './services.js';
import { SessionStore } from './sessions.js';
import { RequestBody } from './uploads.js';

export type { AgentStatus } from '../api/contract.js';

export interface AgentOptions {
  nodePath: string;
  /** Used to unlock and then forgotten: the caller may zero a Buffer once start() returns. */
  password: Password;
  /** Lock after this long without a request; 0 never. */
  idleTimeoutMs?: number;
  /** Lifetime of a session token (refreshable). Default 1 hour. */
  sessionTtlMs?: number;
  lockWaitMs?: number;
  /** Socket limits (defaults in constants.ts). */
  limits?: Partial<AgentLimits>;
  /** One line per event; never given parameters or values. */
  log?: (line: string) => void;
  /** A full garbage collection, run after lock and unlock so dropped keys and passwords go (agent/memory.ts). */
  collectGarbage?: () => void;
}

export const DEFAULT_SESSION_TTL_MS = 60 * 60 * 1000;

const REQUEST_FIELDS = new Set(['v', 'id', 'method', 'token', 'params']);

/** A checked request of a streamed method: its pages of items, sent by the connection (Connection.sendStream). */
class StreamStart {
  constructor(readonly pages: AsyncGenerator<unknown[], void, undefined>) {}
}

/** Is something answering on this socket? (false for a file left by a killed agent) */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * The password of `session.unlock` as bytes the agent owns (and zeroes after use): `password`
 * (text, taken as UTF-8) or `passwordBase64` (any bytes, as a password file holds).
 */
function passwordBuffer(params: ParamsOf<'session.unlock'>): Buffer {
  if ('password' in params) return Buffer.from(params.password, 'utf8');
  const password = Buffer.from(params.passwordBase64, 'base64');
  // Canonical base64 only: Buffer.from skips what is not base64, so two spellings would give one password.
  if (password.toString('base64') === params.passwordBase64) return password;
  password.fill(0);
  throw new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: params.passwordBase64 is not canonical base64', { field: 'params.passwordBase64' });
}

/**
 * The agent: owns one node (its file lock), unlocked or locked, and serves the owner API on a
 * Unix socket (0600) inside the node directory. start() and stop() may be called many times in
 * one process (tests do). It keeps no password: unlocking again takes the password from a
 * client. The node's lifecycle is NodeLifecycle's: locking (a client, the idle timeout, stop)
 * stops the node's services (idle timer, sessions, node requests) and closes the node, so keys,
 * vault registry and caches of values go with it.
 */
export class Agent implements ConnectionHost {
  private readonly sessions: SessionStore;
  private readonly idleTimer: IdleTimer;
  private readonly nodeWork = new NodeWork();
  private readonly connections = new Set<Connection>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly sweepTimer: NodeJS.Timeout;
  private lifecycle!: NodeLifecycle;
  private stopping: Promise<void> | null = null;
  private readonly startedAt = new Date().toISOString();
  private readonly log: (line: string) => void;
  readonly limits: AgentLimits;
  /** Resolves when the agent has stopped (for whoever started it). */
  readonly stopped: Promise<void>;
  private resolveStopped!: () => void;
  /** Agent and session methods, typed by the contract; owner methods go to api/handlers.ts. */
  private readonly agentMethods: { [M in AgentMethod]: (params: ParamsOf<M>, connection: Connection, token: string | undefined) => Promise<ResultOf<M>> } = {
    'agent.status': async () => this.status(),
    'agent.lock': async () => {
      await this.lockNode('requested');
      return { locked: true };
    },
    'agent.stop': async () => {
      setImmediate(() => void this.stop());
      return { stopping: true };
    },
    'agent.cancel': async (params, connection) => ({ cancelled: connection.cancel(params.id) }),
    'session.unlock': async (params, connection) => {
      const session = await this.unlock(passwordBuffer(params));
      connection.authenticated = true;
      // The request's strings (the frame, the password) are garbage once answered: collect them.
      setImmediate(() => this.collectGarbage());
      return session;
    },
    'session.refresh': async (_params, connection, token) => {
      const session = token !== undefined && !this.locked ? this.sessions.refresh(token) : null;
      if (!session) throw this.unauthenticated();
      connection.authenticated = true;
      return session;
    },
  };

  private constructor(
    readonly nodePath: string,
    readonly socket: string,
    private readonly server: net.Server,
    private readonly options: { idleTimeoutMs: number; sessionTtlMs: number },
    limits: Partial<AgentLimits> | undefined,
    log: ((line: string) => void) | undefined,
    private readonly collectGarbage: () => void,
  ) {
    this.sessions = new SessionStore(options.sessionTtlMs);
    this.idleTimer = new IdleTimer(options.idleTimeoutMs, () => void this.lockNode('idle timeout'));
    this.log = log ?? (() => {});
    this.limits = { ...DEFAULT_AGENT_LIMITS, ...limits };
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    const every = Math.max(20, Math.min(this.limits.frameTimeoutMs, this.limits.writeStallMs, this.limits.connectionIdleMs) / 4);
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
  }

  /** Unlock the node, take its lock, listen. Returns the agent and a session for the starter. */
  static async start(options: AgentOptions): Promise<{ agent: Agent; session: Session }> {
    const socket = socketPath(options.nodePath);
    if (fs.existsSync(socket)) {
      if (await socketAnswers(socket)) throw new KeynodeError('ERR_AGENT_RUNNING', `an agent is already running for ${options.nodePath}`, { socket });
      fs.rmSync(socket, { force: true }); // left by a killed agent
    }
    const server = net.createServer();
    const timing = { idleTimeoutMs: options.idleTimeoutMs ?? 0, sessionTtlMs: options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS };
    const agent = new Agent(options.nodePath, socket, server, timing, options.limits, options.log, options.collectGarbage ?? (() => {}));
    try {
      agent.lifecycle = await NodeLifecycle.open({
        nodePath: options.nodePath,
        password: options.password,
        lockWaitMs: options.lockWaitMs,
        // Started in this order on unlock, stopped in reverse on lock: the idle timer first, then
        // every token is revoked, then running node requests finish before the node closes.
        services: () => [agent.nodeWork, agent.sessions, agent.idleTimer],
      });
    } catch (error) {
      clearInterval(agent.sweepTimer);
      throw error;
    }
    server.on('connection', (connection) => agent.accept(connection));
    const umask = process.umask(0o177); // the socket is created 0600
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socket, () => resolve());
      });
    } catch (error) {
      clearInterval(agent.sweepTimer);
      await agent.lifecycle.close();
      throw new KeynodeError('ERR_IO', `cannot listen on ${socket}: ${(error as Error).message}`);
    } finally {
      process.umask(umask);
    }
    fs.chmodSync(socket, 0o600);
    agent.log(`agent started pid=${process.pid} node=${agent.lifecycle.node?.nodeId ?? '?'}`);
    return { agent, session: agent.sessions.issue() };
  }

  get locked(): boolean {
    return this.lifecycle.locked;
  }

  /** Open connections (for tests and status). */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Timers and requests still pending (for tests: none may be left once stopped). */
  get pendingWork(): { idleTimer: boolean; nodeRequests: number; requests: number } {
    return { idleTimer: this.idleTimer.pending, nodeRequests: this.nodeWork.size, requests: this.inflight.size };
  }

  status(): AgentStatus {
    return {
      pid: process.pid,
      nodePath: this.nodePath,
      socket: this.socket,
      locked: this.locked,
      nodeId: this.lifecycle.node?.nodeId ?? null,
      sessions: this.sessions.active,
      startedAt: this.startedAt,
      idleTimeoutMs: this.options.idleTimeoutMs,
      sessionTtlMs: this.options.sessionTtlMs,
    };
  }

  /** Revoke every session and close the node (keys wiped, vaults and caches dropped); keep its lock. */
  async lockNode(reason: string): Promise<void> {
    this.sessions.revokeAll(); // at once, before waiting for anything: no new request gets in
    if (this.locked) return;
    await this.lifecycle.lock();
    this.collectGarbage();
    this.log(`locked (${reason})`);
  }

  /** Check the password (unlocking the node if locked) and issue a session. Zeroes `password`. */
  async unlock(password: Buffer): Promise<Session> {
    const wasLocked = this.locked;
    await this.lifecycle.unlock(password);
    if (wasLocked) this.log('unlocked');
    return this.sessions.issue();
  }

  private accept(socket: net.Socket): void {
    socket.on('error', () => socket.destroy());
    if (this.stopping) {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.limits.maxConnections && !this.evictIdle()) {
      const message = `the agent is busy: ${this.limits.maxConnections} connections are open and working; try again`;
      // Keep reading a moment: a client that writes first must not get EPIPE instead of the reason.
      socket.resume();
      socket.end(JSON.stringify(errorReply(null, new KeynodeError('ERR_AGENT_BUSY', message))) + '\n');
      socket.once('finish', () => setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref());
      return;
    }
    this.connections.add(new Connection(socket, this));
  }

  /**
   * Make room: close an idle connection, or an unauthenticated one that only trickles a frame
   * in (a slow sender completing a frame just before each timeout would otherwise hold its
   * place for ever). Unauthenticated first, then idle before mid-frame, then the longest quiet.
   */
  private evictIdle(): boolean {
    const rank = (c: Connection) => (c.authenticated ? 2 : 0) + (c.idle ? 0 : 1);
    let victim: Connection | undefined;
    for (const connection of this.connections) {
      if (!connection.idle && (connection.authenticated || !connection.quiet)) continue;
      const better = !victim || rank(connection) < rank(victim) || (rank(connection) === rank(victim) && connection.idleSince < victim.idleSince);
      if (better) victim = connection;
    }
    if (!victim) return false;
    this.connections.delete(victim);
    victim.refuse('ERR_AGENT_BUSY', `the agent closed this idle connection to make room (at most ${this.limits.maxConnections} connections)`);
    return true;
  }

  /** Bytes held for all connections: requests buffered or running, replies not yet sent. */
  get pendingBytes(): number {
    let total = 0;
    for (const connection of this.connections) total += connection.pendingBytes;
    return total;
  }

  underPressure(): boolean {
    return this.pendingBytes > this.limits.maxPendingBytes;
  }

  released(): void {
    for (const connection of this.connections) connection.pump();
  }

  closed(connection: Connection): void {
    this.connections.delete(connection);
    this.released();
  }

  private sweep(): void {
    const now = Date.now();
    for (const connection of this.connections) connection.sweep(now);
  }

  /** Parse one frame (then zero it: it may hold a password or a value) and answer it. */
  async serve(connection: Connection, frame: Buffer): Promise<Reply | StreamedReply | null> {
    if (frame[0] === BINARY_FRAME_MARK) return this.binaryBodyFrame(connection, frame);
    let request: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(frame.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      request = parsed as Record<string, unknown>;
    } catch (error) {
      const why = error instanceof RangeError ? 'nested too deeply' : 'not a JSON object';
      return errorReply(null, new KeynodeError('ERR_INVALID_REQUEST', `invalid request: ${why}`));
    } finally {
      frame.fill(0);
    }
    const id = typeof request.id === 'string' || typeof request.id === 'number' ? request.id : null;
    if (request.method === undefined && (request.chunk !== undefined || request.end !== undefined)) return this.bodyFrame(connection, id, request);
    const started = performance.now();
    const work = this.handleRequest(connection, request);
    this.inflight.add(work);
    const method = typeof request.method === 'string' && request.method.length < 40 ? request.method : '?';
    let reply: Reply;
    try {
      const outcome = await work;
      if (outcome instanceof StreamStart) return this.streamed(id!, method, outcome.pages, started);
      reply = resultReply(id, outcome);
    } catch (error) {
      if (!isKeynodeError(error)) this.log(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      reply = errorReply(id, isKeynodeError(error) ? error : new KeynodeError('ERR_INTERNAL', 'internal error in the agent'));
    } finally {
      this.inflight.delete(work);
    }
    this.log(`${method} ${'error' in reply ? reply.error.code : 'ok'} ${(performance.now() - started).toFixed(1)}ms`);
    return reply;
  }

  private async handleRequest(connection: Connection, request: Record<string, unknown>): Promise<unknown> {
    const { v, id, method, token, params } = request;
    if (v !== PROTOCOL_VERSION)
      throw new KeynodeError('ERR_INVALID_REQUEST', `invalid request: unsupported protocol version (this agent speaks v${PROTOCOL_VERSION})`);
    if (!(typeof id === 'string' && id.length <= 64) && !(typeof id === 'number' && Number.isSafeInteger(id))) {
      throw new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: id must be a string or an integer');
    }
    if (typeof method !== 'string') throw new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: method must be a string');
    if (token !== undefined && typeof token !== 'string') throw new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: token must be a string');
    for (const key of Object.keys(request)) {
      if (!REQUEST_FIELDS.has(key)) throw new KeynodeError('ERR_INVALID_REQUEST', `invalid request: unknown field ${key.slice(0, 40)}`);
    }
    if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
      throw new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: params must be an object');
    }
    if (this.stopping) throw new KeynodeError('ERR_AGENT_NOT_RUNNING', 'the agent is stopping');
    this.idleTimer.touch();
    if (!isMethodName(method)) throw new KeynodeError('ERR_INVALID_REQUEST', `invalid request: unknown method ${method.slice(0, 40)}`);
    if (isOwnerMethod(method)) {
      const node = this.lifecycle.node;
      if (!node) throw new KeynodeError('ERR_AGENT_LOCKED', 'the agent is locked');
      if (!this.sessions.isValid(token)) throw this.unauthenticated();
      connection.authenticated = true;
      if (isStreamMethod(method)) return new StreamStart(dispatchStream(node, method, params));
      if (isUploadMethod(method)) return this.upload(connection, id, node, method, params);
      return this.nodeWork.track(dispatch(node, method, params));
    }
    return this.runAgentMethod(method, params, connection, token);
  }

  /**
   * A request with a streamed body: its chunk frames, which follow, feed the handler. Whatever
   * ends it (an error, the reply), the id is forgotten: later chunks of it are refused.
   */
  private async upload(connection: Connection, id: RequestId, node: KeynodeNode, method: UploadMethod, params: unknown): Promise<unknown> {
    if (connection.bodies.has(id)) throw new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: an upload with this id is already running');
    const body = new RequestBody();
    connection.bodies.set(id, body);
    // Locking aborts it as it aborts streams: a slow uploader must not keep the node open.
    const controller = new AbortController();
    controller.signal.addEventListener('abort', () =>
      body.fail(isKeynodeError(controller.signal.reason) ? controller.signal.reason : new KeynodeError('ERR_AGENT_LOCKED', 'the agent was locked')),
    );
    const finished = this.nodeWork.trackStream(controller);
    try {
      return await dispatchUpload(node, method, params, body);
    } finally {
      finished();
      // Ended early (an error before the body's `end`): the id stays known, failed, so the chunks
      // still in flight are dropped quietly until that `end`.
      if (connection.bodies.get(id) === body) body.fail(new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: the upload is over'));
    }
  }

  /** A binary chunk of a streamed request body (framing.ts): its payload, without base64 or JSON. */
  private async binaryBodyFrame(connection: Connection, frame: Buffer): Promise<Reply | null> {
    if (frame.length < BINARY_FRAME_HEADER_BYTES || frame[1] !== BINARY_KIND_CHUNK) {
      return errorReply(null, new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: a binary frame of an unknown kind'));
    }
    const id = frame.readUInt32BE(2);
    const body = connection.bodies.get(id);
    if (!body) return errorReply(id, new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: no upload runs under this id'));
    if (body.failed) return null;
    const payload = frame.subarray(BINARY_FRAME_HEADER_BYTES);
    if (payload.length > UPLOAD_CHUNK_MAX_BYTES) {
      body.fail(new KeynodeError('ERR_INVALID_REQUEST', `invalid request: a body chunk is limited to ${UPLOAD_CHUNK_MAX_BYTES / 1024 / 1024} MiB`));
      return null;
    }
    await body.push(payload);
    return null;
  }

  /** A frame of a streamed request body: handed to its upload; settles once taken (flow control). */
  private async bodyFrame(connection: Connection, id: RequestId | null, frame: Record<string, unknown>): Promise<Reply | null> {
    const body = id === null ? undefined : connection.bodies.get(id);
    if (!body) return errorReply(id, new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: no upload runs under this id'));
    if (frame.end === true) {
      connection.bodies.delete(id!);
      body.end();
      return null;
    }
    if (body.failed) return null; // the upload already replied with its error: drop what still comes
    const pieces = frame.chunk;
    if (!Array.isArray(pieces) || pieces.length > 1) {
      body.fail(new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: a body frame holds one chunk'));
      return null;
    }
    try {
      await body.push(decodeBodyPiece(pieces[0] ?? ''));
    } catch (error) {
      body.fail(isKeynodeError(error) ? error : new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: a bad body chunk'));
    }
    return null;
  }

  /** A stream for the connection to send; locking the node aborts it (ERR_AGENT_LOCKED) and waits for it. */
  private streamed(id: string | number, method: string, pages: AsyncGenerator<unknown[], void, undefined>, started: number): StreamedReply {
    const controller = new AbortController();
    const finished = this.nodeWork.trackStream(controller);
    return {
      stream: {
        id,
        pages,
        controller,
        finished: (outcome) => {
          finished();
          const how = typeof outcome === 'string' ? (outcome === 'end' ? 'ok' : outcome) : outcome.code;
          this.log(`${method} ${how} ${(performance.now() - started).toFixed(1)}ms (stream)`);
        },
      },
    };
  }

  private runAgentMethod<M extends AgentMethod>(method: M, params: unknown, connection: Connection, token: string | undefined): Promise<ResultOf<M>> {
    const checked = validateRequest(METHODS[method].params, params ?? {}, 'params') as ParamsOf<M>;
    const run = this.agentMethods[method] as (params: ParamsOf<M>, connection: Connection, token: string | undefined) => Promise<ResultOf<M>>;
    return run(checked, connection, token);
  }

  private unauthenticated(): KeynodeError {
    return this.locked
      ? new KeynodeError('ERR_AGENT_LOCKED', 'the agent is locked')
      : new KeynodeError('ERR_UNAUTHENTICATED', 'no valid session (expired or revoked)');
  }

  /** Stop accepting, let in-flight requests finish, close the node, release lock and socket. Leaves no timer behind. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.sweepTimer);
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      await Promise.allSettled([...this.inflight]);
      await new Promise((resolve) => setImmediate(resolve)); // their replies are written in the microtasks before this
      await this.closeConnections(200);
      this.sessions.revokeAll();
      await this.lifecycle.close();
      await closed;
      fs.rmSync(this.socket, { force: true });
      this.log('agent stopped');
      this.resolveStopped();
    })();
    return this.stopping;
  }

  /** End every connection; those still open after `graceMs` (a client that does not close) are destroyed. */
  private async closeConnections(graceMs: number): Promise<void> {
    const open = [...this.connections].map((connection) => {
      const socket = connection.socket;
      return socket.destroyed
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            socket.once('close', () => resolve());
            socket.end();
          });
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(open), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    for (const connection of this.connections) connection.socket.destroy();
  }
}
