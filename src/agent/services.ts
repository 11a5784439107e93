import { KeynodeError } from '../errors.js';
import type { Service } from '../node/lifecycle.js';

/**
 * Locks the node after `timeoutMs` without a request (0: never). A service of the unlocked
 * node: its timer runs only while the node is unlocked, and stopping it leaves no timer behind.
 */
export class IdleTimer implements Service {
  readonly name = 'idle timer';
  private timer: NodeJS.Timeout | undefined;
  private lastActivity = Date.now();
  private running = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly onIdle: () => void,
  ) {}

  start(): void {
    this.running = true;
    this.lastActivity = Date.now();
    this.arm();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** A request came in: the idle time starts again. */
  touch(): void {
    this.lastActivity = Date.now();
    if (this.running) this.arm();
  }

  /** Is a timer pending? (for tests: nothing may be left once stopped) */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  private arm(): void {
    if (this.timeoutMs <= 0 || !this.running) return;
    clearTimeout(this.timer);
    const due = this.lastActivity + this.timeoutMs - Date.now();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (!this.running) return;
        if (Date.now() - this.lastActivity >= this.timeoutMs) this.onIdle();
        else this.arm();
      },
      Math.max(due, 10),
    );
    this.timer.unref();
  }
}

/**
 * Requests working on the unlocked node. Stopping it waits for them to finish, so the node is
 * never closed under a running write. Only node work is tracked: a request that itself locks
 * (agent.lock) must not wait for itself.
 */
export class NodeWork implements Service {
  readonly name = 'node requests';
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly streams = new Set<AbortController>();

  start(): void {}

  /** Streams are aborted (a slow reader must not hold the node open), then everything is awaited. */
  async stop(): Promise<void> {
    for (const stream of this.streams) stream.abort(new KeynodeError('ERR_AGENT_LOCKED', 'the agent was locked'));
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** A streamed reply reading the node; returns what to call once it has finished. */
  trackStream(controller: AbortController): () => void {
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    this.streams.add(controller);
    void this.track(done);
    return () => {
      this.streams.delete(controller);
      finish();
    };
  }

  track<T>(work: Promise<T>): Promise<T> {
    this.inflight.add(work);
    const done = () => this.inflight.delete(work);
    work.then(done, done);
    return work;
  }

  get size(): number {
    return this.inflight.size;
  }
}
