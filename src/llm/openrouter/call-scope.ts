import { ServiceTimeoutError } from '../../errors.js';

/**
 * One engine call's cancellation: the caller's signal plus the whole-call deadline, folded into one
 * AbortSignal that the limiter queue, the backoff timer and the HTTP request all listen to. Whoever
 * aborts first (caller, deadline, idle timer, slow consumer) sets the reason the call rejects with.
 * dispose() removes the listener from the caller's signal, which may outlive this call.
 */
export class CallScope {
  readonly #controller = new AbortController();
  readonly #callerSignal: AbortSignal;
  readonly #deadlineAt: number;
  readonly #deadlineTimer: NodeJS.Timeout;
  readonly #timeoutMs: number;

  constructor(callerSignal: AbortSignal, timeoutMs: number) {
    this.#callerSignal = callerSignal;
    this.#timeoutMs = timeoutMs;
    this.#deadlineAt = performance.now() + timeoutMs;
    this.#deadlineTimer = setTimeout(this.#onDeadline, timeoutMs);
    if (callerSignal.aborted) this.#controller.abort(callerSignal.reason);
    else callerSignal.addEventListener('abort', this.#onCallerAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  remainingMs(): number {
    return this.#deadlineAt - performance.now();
  }

  /** Aborts the call with `reason` unless something else already did. */
  abort(reason: unknown): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }

  dispose(): void {
    clearTimeout(this.#deadlineTimer);
    this.#callerSignal.removeEventListener('abort', this.#onCallerAbort);
  }

  readonly #onCallerAbort = (): void => {
    this.abort(this.#callerSignal.reason);
  };

  readonly #onDeadline = (): void => {
    this.abort(new ServiceTimeoutError('llm request exceeded its deadline', { details: `${this.#timeoutMs} ms` }));
  };
}
