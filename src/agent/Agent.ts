import fs from 'node:fs';
import net from 'node:net';
import { KeynodeError, isKeynodeError } from '../errors.js';
import { KeynodeNode, type Password } from '../node/KeynodeNode.js';
import { unlockKeyFile } from '../keys/KeyFile.js';
import { NodeLock } from '../storage/NodeLock.js';
import { Connection, REFUSED_LINGER_MS, DEFAULT_AGENT_LIMITS, type AgentLimits, type ConnectionHost, type Reply } from './Connection.js';
import { dispatch, isMethodName } from './api.js';
import { PROTOCOL_VERSION } from './framing.js';
import { socketPath } from './paths.js';
import { SessionStore, type Session } from './sessions.js';

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

export interface AgentStatus {
  pid: number;
  nodePath: string;
  socket: string;
  locked: boolean;
  nodeId: string | null;
  sessions: number;
  startedAt: string;
  idleTimeoutMs: number;
  sessionTtlMs: number;
}

export const DEFAULT_SESSION_TTL_MS = 60 * 60 * 1000;

const REQUEST_FIELDS = new Set(['v', 'id', 'method', 'token', 'params']);

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

const UNLOCK_PARAMS = 'invalid request: params must be { password: string } or { passwordBase64: string }';

/**
 * The password of `session.unlock` as bytes the agent owns (and zeroes after use): exactly one
 * of `password` (text, taken as UTF-8) or `passwordBase64` (any bytes, as a password file holds).
 */
function passwordBuffer(params: Record<string, unknown>): Buffer {
  const keys = Object.keys(params);
  if (keys.length !== 1) throw new KeynodeError('ERR_INVALID_REQUEST', UNLOCK_PARAMS);
  const value = params[keys[0]!];
  if (typeof value !== 'string') throw new KeynodeError('ERR_INVALID_REQUEST', UNLOCK_PARAMS);
  if (keys[0] === 'password') return Buffer.from(value, 'utf8');
  if (keys[0] !== 'passwordBase64') throw new KeynodeError('ERR_INVALID_REQUEST', UNLOCK_PARAMS);
  const password = Buffer.from(value, 'base64');
  // Canonical base64 only: Buffer.from skips what is not base64, so two spellings would give one password.
  if (password.toString('base64') === value) return password;
  password.fill(0);
  throw new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: params.passwordBase64 is not canonical base64');
}

/**
 * The agent: owns one node (its lock), unlocked or locked, and serves the client API on a
 * Unix socket (0600) inside the node directory. start() and stop() may be called many times in
 * one process (tests do). It keeps no password: unlocking again takes the password from a
 * client. Locking closes the node, so keys, vault registry and caches of values go with it.
 */
export class Agent implements ConnectionHost {
  private node: KeynodeNode | null;
  private readonly sessions: SessionStore;
  private readonly connections = new Set<Connection>();
  private readonly inflight = new Set<Promise<unknown>>();
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly sweepTimer: NodeJS.Timeout;
  private stopping: Promise<void> | null = null;
  private readonly startedAt = new Date().toISOString();
  private readonly log: (line: string) => void;
  readonly limits: AgentLimits;
  /** Resolves when the agent has stopped (for whoever started it). */
  readonly stopped: Promise<void>;
  private resolveStopped!: () => void;

  private constructor(
    readonly nodePath: string,
    readonly socket: string,
    private readonly lock: NodeLock,
    node: KeynodeNode,
    private readonly server: net.Server,
    private readonly options: { idleTimeoutMs: number; sessionTtlMs: number },
    limits: Partial<AgentLimits> | undefined,
    log: ((line: string) => void) | undefined,
    private readonly collectGarbage: () => void,
  ) {
    this.node = node;
    this.sessions = new SessionStore(options.sessionTtlMs);
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
    const lock = await NodeLock.acquire(options.nodePath, { waitMs: options.lockWaitMs });
    let node: KeynodeNode;
    try {
      node = await KeynodeNode.open({ nodePath: options.nodePath, password: options.password, heldLock: lock });
    } catch (error) {
      lock.release();
      throw error;
    }
    const server = net.createServer();
    const timing = { idleTimeoutMs: options.idleTimeoutMs ?? 0, sessionTtlMs: options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS };
    const agent = new Agent(options.nodePath, socket, lock, node, server, timing, options.limits, options.log, options.collectGarbage ?? (() => {}));
    server.on('connection', (connection) => agent.accept(connection));
    const umask = process.umask(0o177); // the socket is created 0600
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socket, () => resolve());
      });
    } catch (error) {
      clearInterval(agent.sweepTimer);
      node.close();
      throw new KeynodeError('ERR_IO', `cannot listen on ${socket}: ${(error as Error).message}`);
    } finally {
      process.umask(umask);
    }
    fs.chmodSync(socket, 0o600);
    agent.armIdleTimer();
    agent.log(`agent started pid=${process.pid} node=${node.nodeId}`);
    return { agent, session: agent.sessions.issue() };
  }

  get locked(): boolean {
    return this.node === null;
  }

  /** Open connections (for tests and status). */
  get connectionCount(): number {
    return this.connections.size;
  }

  status(): AgentStatus {
    return {
      pid: process.pid,
      nodePath: this.nodePath,
      socket: this.socket,
      locked: this.locked,
      nodeId: this.node?.nodeId ?? null,
      sessions: this.sessions.active,
      startedAt: this.startedAt,
      idleTimeoutMs: this.options.idleTimeoutMs,
      sessionTtlMs: this.options.sessionTtlMs,
    };
  }

  /** Revoke every session and close the node (keys wiped, vaults and caches dropped); keep its lock. */
  async lockNode(reason: string): Promise<void> {
    this.sessions.revokeAll();
    if (!this.node) return;
    await Promise.allSettled([...this.inflight]);
    this.node?.close({ keepLock: true });
    this.node = null;
    this.collectGarbage();
    this.log(`locked (${reason})`);
  }

  /** Check the password (unlocking the node if locked) and issue a session. Zeroes `password`. */
  async unlock(password: Buffer): Promise<Session> {
    try {
      if (this.node) {
        const master = await unlockKeyFile(this.nodePath, password);
        master.fill(0);
      } else {
        this.node = await KeynodeNode.open({ nodePath: this.nodePath, password, heldLock: this.lock });
        this.log('unlocked');
      }
    } finally {
      password.fill(0);
    }
    return this.sessions.issue();
  }

  private armIdleTimer(): void {
    if (this.options.idleTimeoutMs <= 0) return;
    clearTimeout(this.idleTimer);
    const due = this.lastActivity + this.options.idleTimeoutMs - Date.now();
    this.idleTimer = setTimeout(() => {
      if (Date.now() - this.lastActivity >= this.options.idleTimeoutMs) void this.lockNode('idle timeout');
      else this.armIdleTimer();
    }, Math.max(due, 10));
    this.idleTimer.unref();
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
      socket.end(JSON.stringify({ v: PROTOCOL_VERSION, id: null, error: { code: 'ERR_AGENT_BUSY', message } }) + '\n');
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
  async serve(connection: Connection, frame: Buffer): Promise<Reply> {
    let request: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(frame.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      request = parsed as Record<string, unknown>;
    } catch (error) {
      const why = error instanceof RangeError ? 'nested too deeply' : 'not a JSON object';
      return { v: PROTOCOL_VERSION, id: null, error: { code: 'ERR_INVALID_REQUEST', message: `invalid request: ${why}` } };
    } finally {
      frame.fill(0);
    }
    const id = typeof request.id === 'string' || typeof request.id === 'number' ? request.id : null;
    const started = performance.now();
    const work = this.handleRequest(connection, request);
    this.inflight.add(work);
    let reply: Reply;
    try {
      reply = { v: PROTOCOL_VERSION, id, result: await work };
    } catch (error) {
      if (!isKeynodeError(error)) this.log(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      const code = isKeynodeError(error) ? error.code : 'ERR_INTERNAL';
      const message = isKeynodeError(error) ? error.message : 'internal error in the agent';
      reply = { v: PROTOCOL_VERSION, id, error: { code, message } };
    } finally {
      this.inflight.delete(work);
    }
    const method = typeof request.method === 'string' && request.method.length < 40 ? request.method : '?';
    this.log(`${method} ${'error' in reply ? reply.error.code : 'ok'} ${(performance.now() - started).toFixed(1)}ms`);
    return reply;
  }

  private async handleRequest(connection: Connection, request: Record<string, unknown>): Promise<unknown> {
    const { v, id, method, token, params } = request;
    if (v !== PROTOCOL_VERSION) throw new KeynodeError('ERR_INVALID_REQUEST', `invalid request: unsupported protocol version (this agent speaks v${PROTOCOL_VERSION})`);
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
    this.lastActivity = Date.now();
    this.armIdleTimer();
    const p = (params ?? {}) as Record<string, unknown>;
    switch (method) {
      case 'agent.status':
        return this.status();
      case 'agent.lock':
        await this.lockNode('requested');
        return { locked: true };
      case 'agent.stop':
        setImmediate(() => void this.stop());
        return { stopping: true };
      case 'session.unlock': {
        const session = await this.unlock(passwordBuffer(p));
        connection.authenticated = true;
        // The request's strings (the frame, the password) are garbage once answered: collect them.
        setImmediate(() => this.collectGarbage());
        return session;
      }
      case 'session.refresh': {
        const session = typeof token === 'string' && this.node ? this.sessions.refresh(token) : null;
        if (!session) throw this.unauthenticated();
        connection.authenticated = true;
        return session;
      }
    }
    if (!isMethodName(method)) throw new KeynodeError('ERR_INVALID_REQUEST', `invalid request: unknown method ${method.slice(0, 40)}`);
    if (!this.node) throw new KeynodeError('ERR_AGENT_LOCKED', 'the agent is locked: run "keynode agent unlock"');
    if (!this.sessions.isValid(token)) throw this.unauthenticated();
    connection.authenticated = true;
    return dispatch(this.node, method, p);
  }

  private unauthenticated(): KeynodeError {
    return this.node
      ? new KeynodeError('ERR_UNAUTHENTICATED', 'no valid session (expired or revoked): run "keynode agent unlock"')
      : new KeynodeError('ERR_AGENT_LOCKED', 'the agent is locked: run "keynode agent unlock"');
  }

  /** Stop accepting, let in-flight requests finish, close the node, release lock and socket. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearTimeout(this.idleTimer);
      clearInterval(this.sweepTimer);
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      await Promise.allSettled([...this.inflight]);
      await new Promise((resolve) => setImmediate(resolve)); // their replies are written in the microtasks before this
      for (const connection of this.connections) connection.socket.end();
      setTimeout(() => {
        for (const connection of this.connections) connection.socket.destroy();
      }, 200).unref();
      this.sessions.revokeAll();
      this.node?.close({ keepLock: true });
      this.node = null;
      this.lock.release();
      await closed;
      fs.rmSync(this.socket, { force: true });
      this.log('agent stopped');
      this.resolveStopped();
    })();
    return this.stopping;
  }
}
