import path from 'node:path';
import { KeynodeError, isKeynodeError } from '../errors.js';
import { FILE_PARAMS } from '../agent/fileParams.js';
import type { MethodName, ParamsOf, ResultOf } from '../agent/api.js';
import { socketPath } from '../agent/paths.js';
import type { KeynodeNode, Password } from '../node/KeynodeNode.js';
import { AgentConnection } from './AgentConnection.js';
import { readSession, writeSession } from './sessionFile.js';

/**
 * The one way the CLI reaches a node: through its running agent, or (when none runs) by
 * opening the node in this process. Both run the same API handlers (agent/api.ts), so every
 * command gives the same output and the same errors either way.
 */
export interface KeynodeClient {
  readonly via: 'agent' | 'local';
  call<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>>;
  close(): void;
}

export interface ClientOptions {
  nodePath: string;
  /**
   * Asked only when needed: opening the node locally, or (re)authenticating to the agent.
   * Bytes go to argon2 as they are (a string as UTF-8); a Uint8Array returned is zeroed after use.
   */
  password: () => Promise<Password>;
  lockWaitMs?: number;
}

/** Params with file paths made absolute here: the agent resolves nothing against its own directory. */
function withAbsolutePaths<M extends MethodName>(method: M, params: ParamsOf<M>): ParamsOf<M> {
  const fields = FILE_PARAMS[method];
  if (!fields) return params;
  const copy = { ...(params as Record<string, unknown>) };
  for (const field of fields) if (typeof copy[field] === 'string') copy[field] = path.resolve(copy[field]);
  return copy;
}

class AgentClient implements KeynodeClient {
  readonly via = 'agent';
  /** The session token, read (and refreshed if due) once per client, replaced on re-authentication. */
  private session: Promise<string | undefined> | null = null;

  constructor(
    private readonly connection: AgentConnection,
    private readonly options: ClientOptions,
  ) {}

  private async authenticate(cause: KeynodeError): Promise<string> {
    let password: Password;
    try {
      password = await this.options.password();
    } catch (error) {
      if (isKeynodeError(error, 'ERR_PASSWORD_REQUIRED')) throw cause;
      throw error;
    }
    const session = await this.connection.unlock(password);
    writeSession(this.options.nodePath, session);
    this.session = Promise.resolve(session.token);
    return session.token;
  }

  /** The stored token, refreshed once past half its life. */
  private async token(): Promise<string | undefined> {
    const stored = readSession(this.options.nodePath);
    if (!stored) return undefined;
    const now = Date.now();
    if (stored.expiresAt > now && now > stored.issuedAt + (stored.expiresAt - stored.issuedAt) / 2) {
      try {
        const session = (await this.connection.request('session.refresh', {}, stored.token)) as { token: string; expiresAt: number };
        writeSession(this.options.nodePath, session);
        return session.token;
      } catch {
        return stored.token; // the call itself will report what is wrong
      }
    }
    return stored.token;
  }

  async call<M extends MethodName>(method: M, given: ParamsOf<M>): Promise<ResultOf<M>> {
    const params = withAbsolutePaths(method, given);
    this.session ??= this.token();
    const token = await this.session;
    try {
      return (await this.connection.request(method, params, token)) as ResultOf<M>;
    } catch (error) {
      if (!isKeynodeError(error, 'ERR_UNAUTHENTICATED') && !isKeynodeError(error, 'ERR_AGENT_LOCKED')) throw error;
      const fresh = await this.authenticate(error);
      return (await this.connection.request(method, params, fresh)) as ResultOf<M>;
    }
  }

  /** Agent control methods (agent.*, session.*). */
  control(method: string, params: unknown = {}, token?: string): Promise<unknown> {
    return this.connection.request(method, params, token);
  }

  close(): void {
    this.connection.close();
  }
}

class LocalClient implements KeynodeClient {
  readonly via = 'local';
  private node: KeynodeNode | null = null;

  constructor(private readonly options: ClientOptions) {}

  async call<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    const { dispatch } = await import('../agent/api.js');
    if (!this.node) {
      const { KeynodeNode } = await import('../node/KeynodeNode.js');
      const { keyFileExists } = await import('../keys/KeyFile.js');
      if (!keyFileExists(this.options.nodePath)) {
        throw new KeynodeError('ERR_NODE_NOT_FOUND', `no keynode node at ${this.options.nodePath} (run "keynode init" or pass --node-path)`, { nodePath: this.options.nodePath });
      }
      const password = await this.options.password();
      try {
        this.node = await KeynodeNode.open({ nodePath: this.options.nodePath, password, lockWaitMs: this.options.lockWaitMs });
      } finally {
        if (typeof password !== 'string') password.fill(0);
      }
    }
    return (await dispatch(this.node, method, withAbsolutePaths(method, params))) as ResultOf<M>;
  }

  close(): void {
    this.node?.close();
    this.node = null;
  }
}

/** The agent's connection if one answers for this node, else null. */
export async function connectAgent(nodePath: string): Promise<AgentConnection | null> {
  return AgentConnection.connect(socketPath(nodePath));
}

export async function connectClient(options: ClientOptions): Promise<KeynodeClient> {
  const connection = await connectAgent(options.nodePath);
  return connection ? new AgentClient(connection, options) : new LocalClient(options);
}

