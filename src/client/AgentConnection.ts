import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AGENT_MAX_FRAME_BYTES, AGENT_UNAUTHENTICATED_MAX_FRAME_BYTES } from '../constants.js';
import { EXIT_CODES, KeynodeError, type ErrorCode } from '../errors.js';
import { onFrames, PROTOCOL_VERSION } from '../agent/framing.js';
import type { Password } from '../node/KeynodeNode.js';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Replies may carry a whole vault; bigger than any request frame, still bounded. */
const MAX_REPLY_BYTES = 4 * AGENT_MAX_FRAME_BYTES;

const errorCode = (code: unknown): ErrorCode => (typeof code === 'string' && Object.prototype.hasOwnProperty.call(EXIT_CODES, code) ? (code as ErrorCode) : 'ERR_INTERNAL');

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
    let response: { id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
    try {
      response = JSON.parse(frame.toString('utf8')) as typeof response;
    } catch {
      return this.fail(new KeynodeError('ERR_INTERNAL', 'the agent sent something that is not JSON'));
    }
    const error = response.error ? new KeynodeError(errorCode(response.error.code), typeof response.error.message === 'string' ? response.error.message : 'agent error') : null;
    // An error for no request (busy, frame too large, timed out) is about the whole connection.
    if (response.id === null && error) return this.fail(error);
    const waiter = typeof response.id === 'number' ? this.pending.get(response.id) : undefined;
    if (!waiter) return;
    this.pending.delete(response.id as number);
    if (error) waiter.reject(error);
    else waiter.resolve(response.result);
  }

  private fail(error: KeynodeError): void {
    this.closedError ??= error;
    for (const waiter of this.pending.values()) waiter.reject(this.closedError);
    this.pending.clear();
    this.socket.destroy();
  }

  private send(method: string, params: unknown, token: string | undefined, line: string): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve: (value) => {
          // Mirrors the agent: an unlock or a call it checked the token of (agent.* take none).
          if (method === 'session.unlock' || (token !== undefined && !method.startsWith('agent.'))) this.authenticated = true;
          resolve(value);
        },
        reject,
      });
      this.socket.write(`{"v":${PROTOCOL_VERSION},"id":${id},${line}\n`);
    });
  }

  async request(method: string, params: unknown, token?: string): Promise<unknown> {
    const line = `"method":${JSON.stringify(method)},${token === undefined ? '' : `"token":${JSON.stringify(token)},`}"params":${JSON.stringify(params)}}`;
    // The agent takes large frames only on a connection that has authenticated: do so first
    // (without a valid token this fails as the request itself would, and the caller signs in).
    if (!this.authenticated && Buffer.byteLength(line) + 64 > AGENT_UNAUTHENTICATED_MAX_FRAME_BYTES) {
      const tokenField = token === undefined ? '' : `"token":${JSON.stringify(token)},`;
      await this.send('node.status', {}, token, `"method":"node.status",${tokenField}"params":{}}`);
    }
    return this.send(method, params, token, line);
  }

  /**
   * `session.unlock`: bytes as `passwordBase64` (exactly what argon2 gets), a string as
   * `password`. A Uint8Array is zeroed once sent.
   */
  async unlock(password: Password): Promise<{ token: string; expiresAt: number }> {
    let params: { password: string } | { passwordBase64: string };
    if (typeof password === 'string') {
      params = { password };
    } else {
      params = { passwordBase64: Buffer.from(password.buffer, password.byteOffset, password.byteLength).toString('base64') };
      password.fill(0);
    }
    return (await this.request('session.unlock', params)) as { token: string; expiresAt: number };
  }

  close(): void {
    this.socket.end();
    this.socket.unref();
  }
}
