import { UPLOAD_STALL_MS } from '../constants.js';
import { KeynodeError } from '../errors.js';
import type { RequestId } from '../ipc/protocol.js';

/**
 * Uploads one connection may run at once. Each holds up to the large-value threshold (4 MiB) while
 * it stages, outside the agent's pending-bytes budget: 64 connections x 4 uploads measured 2.4 GiB.
 */
export const MAX_UPLOADS_PER_CONNECTION = 1;

/** Failed bodies kept (so their late chunks are dropped quietly) per connection; older ones are forgotten. */
const KEPT_FAILED_BODIES = 64;

/**
 * A connection's streamed request bodies by request id. At most `maxRunning` uploads wait on
 * their bodies at once (the connection does not count them against its in-flight limit, so
 * their chunks always have room); more is ERR_AGENT_BUSY. A failed body stays until its `end`
 * so that chunks still in flight are dropped quietly, but only the last KEPT_FAILED_BODIES:
 * a client that never sends `end` after errors must not grow the map for ever.
 */
export class RequestBodies extends Map<RequestId, RequestBody> {
  constructor(private readonly maxRunning = MAX_UPLOADS_PER_CONNECTION) {
    super();
  }

  /** Bodies whose upload still waits on them (neither failed nor ended: `end` removes them). */
  get running(): number {
    let count = 0;
    for (const body of this.values()) if (!body.failed) count++;
    return count;
  }

  override set(id: RequestId, body: RequestBody): this {
    if (!this.has(id) && this.running >= this.maxRunning) {
      const most = this.maxRunning === 1 ? 'one upload' : `${this.maxRunning} uploads`;
      throw new KeynodeError('ERR_AGENT_BUSY', `the agent is busy: ${most} at a time on one connection`);
    }
    super.set(id, body);
    if (this.size > this.maxRunning + KEPT_FAILED_BODIES) {
      for (const [oldId, old] of this) {
        if (this.size <= this.maxRunning + KEPT_FAILED_BODIES) break;
        if (old.failed) this.delete(oldId);
      }
    }
    return this;
  }
}

/**
 * The body of one streamed request (docs/api.md, "Streamed request bodies") as the agent receives
 * it: chunk frames are pushed in order and taken by the writer one at a time. A frame's push
 * settles only once the writer has taken its bytes, and the connection counts an unsettled frame
 * as a running request: so a connection holds at most its in-flight limit of chunks, and a fast
 * client is slowed by the socket's own backpressure, never buffered.
 */
export class RequestBody {
  private readonly queue: Array<{ bytes: Buffer; taken: () => void }> = [];
  private ended = false;
  private failure: KeynodeError | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly stallMs = UPLOAD_STALL_MS) {}

  /** One chunk; resolves once the writer has taken it (or the body has failed). */
  push(bytes: Buffer): Promise<void> {
    if (this.ended || this.failure) {
      bytes.fill(0);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.queue.push({ bytes, taken: resolve });
      this.notify();
    });
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  /** Stop the body (the client went away, or sent something wrong): the writer sees `error` and commits nothing. */
  fail(error: KeynodeError): void {
    this.failure ??= error;
    for (const waiting of this.queue.splice(0)) {
      waiting.bytes.fill(0);
      waiting.taken();
    }
    this.notify();
  }

  get failed(): boolean {
    return this.failure !== null;
  }

  private notify(): void {
    const waiting = this.wake;
    this.wake = null;
    waiting?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      if (this.failure) throw this.failure;
      const next = this.queue.shift();
      if (next) {
        next.taken();
        yield next.bytes;
        continue;
      }
      if (this.ended) return;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(
          () => this.fail(new KeynodeError('ERR_INVALID_REQUEST', `invalid request: the body stalled for ${this.stallMs / 1000} s`)),
          this.stallMs,
        );
      });
      clearTimeout(timer);
    }
  }
}
