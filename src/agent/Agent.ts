import fs from 'node:fs';
import net from 'node:net';
import { KeynodeError, isKeynodeError } from '../errors.js';
import { KeynodeNode, type Password } from '../node/KeynodeNode.js';
import { unlockKeyFile } from '../keys/KeyFile.js';
import { NodeLock } from '../storage/NodeLock.js';
import { dispatch, isMethodName } from './api.js';
import { onFrames, PROTOCOL_VERSION, writeFrame } from './framing.js';
import { socketPath } from './paths.js';
import { SessionStore, type Session } from './sessions.js';

export interface AgentOptions {
  nodePath: string;
  password: Password;
  /** Lock after this long without a request; 0 never. */
  idleTimeoutMs?: number;
  /** Lifetime of a session token (refreshable). Default 1 hour. */
  sessionTtlMs?: number;
  lockWaitMs?: number;
  /** One line per event; never given parameters or values. */
  log?: (line: string) => void;
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
 * The agent: owns one node (its lock), unlocked or locked, and serves the client API on a
 * Unix socket (0600) inside the node directory. start() and stop() may be called many times in
 * one process (tests do).
 */
export class Agent {
  private node: KeynodeNode | null;
  private readonly sessions: SessionStore;
  private readonly connections = new Set<net.Socket>();
  private readonly inflight = new Set<Promise<unknown>>();
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | null = null;
  private readonly startedAt = new Date().toISOString();
  private readonly log: (line: string) => void;
  /** Resolves when the agent has stopped (for whoever started it). */
  readonly stopped: Promise<void>;
  private resolveStopped!: () => void;

  private constructor(
    readonly nodePath: string,
    readonly socket: string,
    private readonly lock: NodeLock,
    node: KeynodeNode,
    private readonly server: net.Server,
    private readonly options: Required<Pick<AgentOptions, 'idleTimeoutMs' | 'sessionTtlMs'>> & AgentOptions,
  ) {
    this.node = node;
    this.sessions = new SessionStore(options.sessionTtlMs);
    this.log = options.log ?? (() => {});
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
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
    const full = { ...options, idleTimeoutMs: options.idleTimeoutMs ?? 0, sessionTtlMs: options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS };
    const agent = new Agent(options.nodePath, socket, lock, node, server, full);
    server.on('connection', (connection) => agent.accept(connection));
    const umask = process.umask(0o177); // the socket is created 0600
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socket, () => resolve());
      });
    } catch (error) {
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

  /** Revoke every session and drop the keys; the agent keeps the node's lock. */
  async lockNode(reason: string): Promise<void> {
    this.sessions.revokeAll();
    if (!this.node) return;
    await Promise.allSettled([...this.inflight]);
    this.node?.close({ keepLock: true });
    this.node = null;
    this.log(`locked (${reason})`);
  }

  /** Check the password (unlocking the node if locked) and issue a session. */
  async unlock(password: Password): Promise<Session> {
    if (this.node) {
      const master = await unlockKeyFile(this.nodePath, typeof password === 'string' ? Buffer.from(password) : password);
      master.fill(0);
    } else {
      this.node = await KeynodeNode.open({ nodePath: this.nodePath, password, heldLock: this.lock });
      this.log('unlocked');
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

  private accept(connection: net.Socket): void {
    if (this.stopping) {
      connection.destroy();
      return;
    }
    this.connections.add(connection);
    connection.on('close', () => this.connections.delete(connection));
    connection.on('error', () => connection.destroy());
    onFrames(
      connection,
      (frame) => this.handleFrame(connection, frame),
      () => {
        writeFrame(connection, { v: PROTOCOL_VERSION, id: null, error: { code: 'ERR_INVALID_REQUEST', message: 'frame too large' } });
        connection.end();
      },
    );
  }

  private handleFrame(connection: net.Socket, frame: string): void {
    let request: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(frame);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      request = parsed as Record<string, unknown>;
    } catch {
      writeFrame(connection, { v: PROTOCOL_VERSION, id: null, error: { code: 'ERR_INVALID_REQUEST', message: 'invalid request: not a JSON object' } });
      return;
    }
    const id = typeof request.id === 'string' || typeof request.id === 'number' ? request.id : null;
    const started = performance.now();
    const work = this.handleRequest(request).then(
      (result) => ({ v: PROTOCOL_VERSION, id, result }),
      (error: unknown) => {
        if (!isKeynodeError(error)) this.log(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        const code = isKeynodeError(error) ? error.code : 'ERR_INTERNAL';
        const message = isKeynodeError(error) ? error.message : 'internal error in the agent';
        return { v: PROTOCOL_VERSION, id, error: { code, message } };
      },
    );
    this.inflight.add(work);
    void work.then((response) => {
      this.inflight.delete(work);
      writeFrame(connection, response);
      const method = typeof request.method === 'string' && request.method.length < 40 ? request.method : '?';
      this.log(`${method} ${'error' in response ? response.error.code : 'ok'} ${(performance.now() - started).toFixed(1)}ms`);
    });
  }

  private async handleRequest(request: Record<string, unknown>): Promise<unknown> {
    const { v, id, method, token, params } = request;
    if (v !== PROTOCOL_VERSION) throw new KeynodeError('ERR_INVALID_REQUEST', `invalid request: unsupported protocol version (this agent speaks v${PROTOCOL_VERSION})`);
    if (!(typeof id === 'string' && id.length <= 64) && !(typeof id === 'number' && Number.isSafeInteger(id))) {
      throw new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: id must be a string or an integer');
    }
    if (typeof method !== 'string') throw new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: method must be a string');
    if (token !== undefined && typeof token !== 'string') throw new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: token must be a string');
    for (const key of Object.keys(request)) {
      if (!['v', 'id', 'method', 'token', 'params'].includes(key)) throw new KeynodeError('ERR_INVALID_REQUEST', `invalid request: unknown field ${key}`);
    }
    if (this.stopping) throw new KeynodeError('ERR_AGENT_NOT_RUNNING', 'the agent is stopping');
    this.lastActivity = Date.now();
    this.armIdleTimer();
    const p = params === undefined ? {} : params;
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
        const password = (p as { password?: unknown }).password;
        if (typeof p !== 'object' || p === null || typeof password !== 'string' || Object.keys(p).length !== 1) {
          throw new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: params must be { password: string }');
        }
        return this.unlock(password);
      }
      case 'session.refresh': {
        const session = typeof token === 'string' && this.node ? this.sessions.refresh(token) : null;
        if (!session) throw this.unauthenticated();
        return session;
      }
    }
    if (!isMethodName(method)) throw new KeynodeError('ERR_INVALID_REQUEST', `invalid request: unknown method ${method.slice(0, 40)}`);
    if (!this.node) throw new KeynodeError('ERR_AGENT_LOCKED', 'the agent is locked: run "keynode agent unlock"');
    if (!this.sessions.isValid(token)) throw this.unauthenticated();
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
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      await Promise.allSettled([...this.inflight]);
      for (const connection of this.connections) connection.end();
      setTimeout(() => {
        for (const connection of this.connections) connection.destroy();
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
