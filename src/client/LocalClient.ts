import type { OwnerMethod, ParamsOf, ResultOf } from '../api/contract.js';
import type { StreamItems, StreamMethod, UploadMethod } from '../api/streams.js';
import { KeynodeError } from '../errors.js';
import type { KeynodeNode } from '../node/KeynodeNode.js';
import { withAbsolutePaths, type ClientOptions, type KeynodeClient } from './AgentClient.js';

/**
 * No agent runs: open the node in this process (taking its file lock) and run the same API
 * handlers the agent would (api/handlers.ts), so output and errors are the same either way.
 * The node, and everything it loads, is imported on the first call only.
 */
export class LocalClient implements KeynodeClient {
  readonly via = 'local';
  private node: KeynodeNode | null = null;

  constructor(private readonly options: ClientOptions) {}

  async call<M extends OwnerMethod>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    const { dispatch } = await import('../api/handlers.js');
    return dispatch(await this.open(), method, withAbsolutePaths(method, params));
  }

  /** The agent's own generator (api/handlers.ts), run here: the same items in the same order. */
  async *stream<M extends StreamMethod>(method: M, params: ParamsOf<M>): AsyncGenerator<Array<StreamItems[M]>, void, undefined> {
    const { dispatchStream } = await import('../api/handlers.js');
    yield* dispatchStream(await this.open(), method, params);
  }

  /** The agent's own upload handler (api/handlers.ts), fed straight from `source`. */
  async upload<M extends UploadMethod>(method: M, params: ParamsOf<M>, source: AsyncIterable<Uint8Array>): Promise<ResultOf<M>> {
    const { dispatchUpload } = await import('../api/handlers.js');
    return dispatchUpload(await this.open(), method, params, source);
  }

  private async open(): Promise<KeynodeNode> {
    if (!this.node) {
      const { KeynodeNode } = await import('../node/KeynodeNode.js');
      const { keyFileExists } = await import('../keys/KeyFile.js');
      if (!keyFileExists(this.options.nodePath)) {
        throw new KeynodeError('ERR_NODE_NOT_FOUND', `no keynode node at ${this.options.nodePath}`, { nodePath: this.options.nodePath });
      }
      const password = await this.options.password();
      try {
        this.node = await KeynodeNode.open({ nodePath: this.options.nodePath, password, lockWaitMs: this.options.lockWaitMs });
      } finally {
        if (typeof password !== 'string') password.fill(0);
      }
    }
    return this.node;
  }

  close(): void {
    this.node?.close();
    this.node = null;
  }
}
