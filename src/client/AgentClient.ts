import path from 'node:path';
import type { MethodName, OwnerMethod, ParamsOf, ResultOf } from '../api/contract.js';
import { FILE_PARAMS } from '../api/fileParams.js';
import type { StreamItems, StreamMethod, UploadMethod } from '../api/streams.js';
import { isKeynodeError, type KeynodeError } from '../errors.js';
import type { Password } from '../node/KeynodeNode.js';
import type { AgentConnection } from './AgentConnection.js';
import { readSession, writeSession } from './sessionFile.js';

/**
 * How a client reaches a node: `call` runs one owner-API method (api/contract.ts), typed by
 * the contract. Through a running agent (AgentClient) or in this process (LocalClient).
 */
export interface KeynodeClient {
  readonly via: 'agent' | 'local';
  call<M extends OwnerMethod>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>>;
  /**
   * A streamed method's items (api/streams.ts) in pages as they come, in bounded memory whatever
   * their number; the same items in the same order either way (pages may be cut differently).
   * Stopping early stops the work.
   */
  stream<M extends StreamMethod>(method: M, params: ParamsOf<M>): AsyncGenerator<Array<StreamItems[M]>, void, undefined>;
  /**
   * A method with a streamed request body (api/streams.ts): `source`'s bytes are sent as they are
   * read, in bounded memory whatever the size. `source` is read once: no retry after it started.
   */
  upload<M extends UploadMethod>(method: M, params: ParamsOf<M>, source: AsyncIterable<Uint8Array>): Promise<ResultOf<M>>;
  close(): void;
}

export interface ClientOptions {
  nodePath: string;
  /**
   * Asked only when needed: opening the node locally, or (re)authenticating to the agent.
   * Bytes go to argon2 as they are (a string as UTF-8); a Uint8Array returned is zeroed after
   * use. Throwing ERR_PASSWORD_REQUIRED means "none to be had": the call then fails with the
   * agent's own reason (ERR_UNAUTHENTICATED, ERR_AGENT_LOCKED).
   */
  password: () => Promise<Password>;
  lockWaitMs?: number;
}

/** Params with file paths made absolute here: the agent resolves nothing against its own directory. */
export function withAbsolutePaths<M extends MethodName>(method: M, params: ParamsOf<M>): ParamsOf<M> {
  const fields = FILE_PARAMS[method];
  if (!fields) return params;
  const copy: Record<string, unknown> = { ...params };
  for (const field of fields) if (typeof copy[field] === 'string') copy[field] = path.resolve(copy[field]);
  return copy as ParamsOf<M>;
}

const needsSession = (error: unknown): error is KeynodeError => isKeynodeError(error, 'ERR_UNAUTHENTICATED') || isKeynodeError(error, 'ERR_AGENT_LOCKED');

/**
 * A client of a running agent, the one both the full CLI and its fast path use: it reads the
 * stored session token, refreshes it once past half its life, and on ERR_UNAUTHENTICATED or
 * ERR_AGENT_LOCKED signs in once with the password (then stores the new token) and retries.
 */
export class AgentClient implements KeynodeClient {
  readonly via = 'agent';
  /** The session token, read (and refreshed if due) once per client, replaced on re-authentication. */
  private session: Promise<string | undefined> | null = null;

  constructor(
    readonly connection: AgentConnection,
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
        const session = await this.connection.request('session.refresh', {}, stored.token);
        writeSession(this.options.nodePath, session);
        return session.token;
      } catch {
        return stored.token; // the call itself will report what is wrong
      }
    }
    return stored.token;
  }

  async call<M extends OwnerMethod>(method: M, given: ParamsOf<M>): Promise<ResultOf<M>> {
    const params = withAbsolutePaths(method, given);
    this.session ??= this.token();
    const token = await this.session;
    try {
      return await this.connection.request(method, params, token);
    } catch (error) {
      if (!needsSession(error)) throw error;
      const fresh = await this.authenticate(error);
      return this.connection.request(method, params, fresh);
    }
  }

  async *stream<M extends StreamMethod>(method: M, params: ParamsOf<M>): AsyncGenerator<Array<StreamItems[M]>, void, undefined> {
    this.session ??= this.token();
    const token = await this.session;
    let started = false;
    try {
      for await (const page of this.connection.stream(method, params, token)) {
        started = true;
        yield page;
      }
      return;
    } catch (error) {
      // A session problem comes before any item: sign in and ask again.
      if (started || !needsSession(error)) throw error;
      const fresh = await this.authenticate(error);
      yield* this.connection.stream(method, params, fresh);
    }
  }

  async upload<M extends UploadMethod>(method: M, params: ParamsOf<M>, source: AsyncIterable<Uint8Array>): Promise<ResultOf<M>> {
    // Sign in first, through an ordinary call (which re-authenticates if need be): the body can
    // be read only once, and the agent takes large frames only from an authenticated connection.
    await this.call('node.status', {});
    return this.connection.upload(method, params, source, await this.session!);
  }

  close(): void {
    this.connection.close();
  }
}
