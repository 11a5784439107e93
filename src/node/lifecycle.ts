import { KeynodeError } from '../errors.js';
import { keyFileExists, unlockKeyFile } from '../keys/KeyFile.js';
import { NodeLock } from '../storage/NodeLock.js';
import { KeynodeNode, passwordBytes, type Password } from './KeynodeNode.js';

/**
 * The one owner of a long-running node's lifecycle: opened and locked (the node's file lock is
 * held, no key is in memory) ⇄ unlocked (a KeynodeNode is open). The agent uses it; so will
 * anything else that keeps a node for longer than one command.
 *
 * Long-lived services (the agent's idle timer and session store; later the network host) share
 * one contract, `Service`, and are started on unlock and stopped, in reverse order, on lock
 * (whatever asked for it: a client, the idle timeout, a stop). A service's `stop()` may wait
 * for work it tracks (in-flight requests), so nothing touches the node once it closes.
 * The contract is structural: a libp2p node already has `start()`/`stop()` and fits as it is.
 */
export interface Service {
  /** For logs. */
  readonly name: string;
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

/** Services started together in order and stopped together in reverse; each start/stop at most once per cycle. */
export class ServiceGroup {
  private running: Service[] = [];

  constructor(private readonly services: readonly Service[]) {}

  get started(): boolean {
    return this.running.length > 0;
  }

  /** Start all; if one fails, stop those already started and rethrow. */
  async start(): Promise<void> {
    if (this.started) return;
    for (const service of this.services) {
      try {
        await service.start();
      } catch (error) {
        await this.stop();
        throw error;
      }
      this.running.push(service);
    }
  }

  /** Stop all that run, last started first; every one is stopped even if another fails (the first failure is rethrown). */
  async stop(): Promise<void> {
    const running = this.running.reverse();
    this.running = [];
    const failures: unknown[] = [];
    for (const service of running) {
      try {
        await service.stop();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw failures[0] instanceof Error ? failures[0] : new Error(`service failed to stop: ${String(failures[0])}`);
  }
}

export interface NodeLifecycleOptions {
  nodePath: string;
  lockWaitMs?: number;
  /** Started on every unlock, stopped on every lock; they may use the unlocked node. */
  services?: (node: KeynodeNode) => readonly Service[];
}

/**
 * A node held open by this process. `open()` takes the file lock and unlocks; `lock()` drops
 * the keys but keeps the file lock (nobody else may open the node meanwhile); `unlock()` opens
 * it again; `close()` locks and releases the file lock. Transitions run one at a time.
 */
export class NodeLifecycle {
  private current: KeynodeNode | null = null;
  private services: ServiceGroup | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly nodePath: string,
    private readonly fileLock: NodeLock,
    private readonly makeServices: (node: KeynodeNode) => readonly Service[],
  ) {}

  /** Take the node's file lock and unlock it with `password` (zeroed if bytes). */
  static async open(options: NodeLifecycleOptions & { password: Password }): Promise<NodeLifecycle> {
    const { nodePath } = options;
    if (!keyFileExists(nodePath)) {
      if (typeof options.password !== 'string') options.password.fill(0);
      throw new KeynodeError('ERR_NODE_NOT_FOUND', `no keynode node at ${nodePath}`, { nodePath });
    }
    let fileLock: NodeLock;
    try {
      fileLock = await NodeLock.acquire(nodePath, { waitMs: options.lockWaitMs });
    } catch (error) {
      if (typeof options.password !== 'string') options.password.fill(0);
      throw error;
    }
    const lifecycle = new NodeLifecycle(nodePath, fileLock, options.services ?? (() => []));
    try {
      await lifecycle.unlock(options.password);
    } catch (error) {
      fileLock.release();
      throw error;
    }
    return lifecycle;
  }

  /** The unlocked node, or null while locked. */
  get node(): KeynodeNode | null {
    return this.current;
  }

  get locked(): boolean {
    return this.current === null;
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => {});
    return next;
  }

  /**
   * Unlock with `password` (zeroed if bytes), starting the services; when already unlocked,
   * only check that the password is the node's. Either way a wrong one is ERR_WRONG_PASSWORD.
   */
  unlock(password: Password): Promise<KeynodeNode> {
    return this.serially(async () => {
      const bytes = passwordBytes(password);
      if (typeof password !== 'string') password.fill(0);
      try {
        if (this.closed) throw new KeynodeError('ERR_INTERNAL', 'the node is closed');
        if (this.current) {
          const master = await unlockKeyFile(this.nodePath, bytes);
          master.fill(0);
          return this.current;
        }
        const node = await KeynodeNode.open({ nodePath: this.nodePath, password: bytes, heldLock: this.fileLock });
        const services = new ServiceGroup(this.makeServices(node));
        try {
          await services.start();
        } catch (error) {
          node.close({ keepLock: true });
          throw error;
        }
        this.current = node;
        this.services = services;
        return node;
      } finally {
        bytes.fill(0);
      }
    });
  }

  /** Stop the services (last first), then close the node: keys wiped, caches dropped; the file lock stays. */
  lock(): Promise<void> {
    return this.serially(() => this.lockNow());
  }

  private async lockNow(): Promise<void> {
    const node = this.current;
    const services = this.services;
    this.current = null;
    this.services = null;
    try {
      await services?.stop();
    } finally {
      node?.close({ keepLock: true });
    }
  }

  /** Lock and release the file lock. Idempotent. */
  close(): Promise<void> {
    return this.serially(async () => {
      if (this.closed) return;
      this.closed = true;
      try {
        await this.lockNow();
      } finally {
        this.fileLock.release();
      }
    });
  }
}
