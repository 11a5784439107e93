import net from 'node:net';
import { KeynodeError, type ErrorCode } from '../errors.js';
import { onFrames, PROTOCOL_VERSION } from '../agent/framing.js';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** One connection to an agent's socket; requests may be pipelined and are matched by id. */
export class AgentConnection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError: KeynodeError | null = null;

  private constructor(private readonly socket: net.Socket) {
    onFrames(
      socket,
      (frame) => this.onFrame(frame),
      () => this.fail(new KeynodeError('ERR_INVALID_REQUEST', 'the agent sent an oversized frame')),
    );
    socket.on('error', () => this.fail(new KeynodeError('ERR_AGENT_NOT_RUNNING', 'the connection to the agent failed')));
    socket.on('close', () => this.fail(new KeynodeError('ERR_AGENT_NOT_RUNNING', 'the agent closed the connection')));
  }

  /** Connect, or null when no agent answers (no socket, or one left by a killed agent). */
  static connect(path: string): Promise<AgentConnection | null> {
    return new Promise((resolve) => {
      const socket = net.connect(path);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        resolve(new AgentConnection(socket));
      });
      socket.once('error', () => resolve(null));
    });
  }

  private onFrame(frame: string): void {
    let response: { id?: unknown; result?: unknown; error?: { code?: string; message?: string } };
    try {
      response = JSON.parse(frame) as typeof response;
    } catch {
      return this.fail(new KeynodeError('ERR_INTERNAL', 'the agent sent something that is not JSON'));
    }
    const waiter = typeof response.id === 'number' ? this.pending.get(response.id) : undefined;
    if (!waiter) return;
    this.pending.delete(response.id as number);
    if (response.error) {
      waiter.reject(new KeynodeError((response.error.code ?? 'ERR_INTERNAL') as ErrorCode, response.error.message ?? 'agent error'));
    } else {
      waiter.resolve(response.result);
    }
  }

  private fail(error: KeynodeError): void {
    this.closedError ??= error;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
    this.socket.destroy();
  }

  request(method: string, params: unknown, token?: string): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(JSON.stringify({ v: PROTOCOL_VERSION, id, method, ...(token === undefined ? {} : { token }), params }) + '\n');
    });
  }

  close(): void {
    this.socket.end();
    this.socket.unref();
  }
}
