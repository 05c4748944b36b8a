import { LlmBusyError, ServerShuttingDownError } from '../errors.js';

export interface RequestLimiterOptions {
  /** Requests allowed upstream at once. */
  maxInFlight: number;
  /** Callers allowed to wait for a slot; one more is refused with LlmBusyError. */
  maxQueue: number;
}

interface Waiter {
  resolve(): void;
  reject(reason: unknown): void;
  signal: AbortSignal;
  onAbort(): void;
}

/**
 * A global cap on in-flight LLM requests with a bounded FIFO queue. A full queue refuses new work up
 * front (LlmBusyError) instead of letting latency grow without bound; a waiter whose signal aborts
 * leaves the queue at once so it never takes a slot it no longer wants.
 */
export class RequestLimiter {
  readonly #maxInFlight: number;
  readonly #maxQueue: number;
  // A Set keeps insertion order (FIFO) and removes an aborted waiter in O(1).
  readonly #waiters = new Set<Waiter>();
  #inFlight = 0;
  #isClosed = false;

  constructor(options: RequestLimiterOptions) {
    if (!Number.isInteger(options.maxInFlight) || options.maxInFlight < 1) {
      throw new RangeError('maxInFlight must be an integer >= 1');
    }
    if (!Number.isInteger(options.maxQueue) || options.maxQueue < 0) {
      throw new RangeError('maxQueue must be an integer >= 0');
    }
    this.#maxInFlight = options.maxInFlight;
    this.#maxQueue = options.maxQueue;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get queued(): number {
    return this.#waiters.size;
  }

  /**
   * Resolves once the caller holds a slot; the caller must call release() exactly once afterwards.
   * Rejects with LlmBusyError when the queue is full, with the signal's reason when it aborts first.
   */
  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#isClosed) return Promise.reject(new ServerShuttingDownError('llm engine is closing'));
    if (this.#inFlight < this.#maxInFlight) {
      this.#inFlight++;
      return Promise.resolve();
    }
    if (this.#waiters.size >= this.#maxQueue) {
      return Promise.reject(
        new LlmBusyError('too many llm requests', {
          details: `in flight ${this.#inFlight}/${this.#maxInFlight}, queued ${this.#waiters.size}/${this.#maxQueue}`,
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          this.#waiters.delete(waiter);
          reject(signal.reason);
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** Hands the slot to the oldest waiter, or frees it. */
  release(): void {
    for (const waiter of this.#waiters) {
      this.#waiters.delete(waiter);
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      // The slot passes on directly: inFlight stays the same.
      waiter.resolve();
      return;
    }
    this.#inFlight--;
  }

  /** Refuses new callers and fails every queued one; holders of a slot keep it until release(). */
  close(): void {
    this.#isClosed = true;
    for (const waiter of this.#waiters) {
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.reject(new ServerShuttingDownError('llm engine is closing'));
    }
    this.#waiters.clear();
  }
}
