import { UPLOAD_STALL_MS } from '../constants.js';
import { KeynodeError } from '../errors.js';

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
