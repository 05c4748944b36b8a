import { randomUUID } from 'node:crypto';
import { RequestCancelledError } from '../errors.js';

export type RequestKind = 'generate' | 'predict';

/** One LLM request of one session. Only the RequestManager creates and retires these. */
export interface RequestHandle {
  readonly requestId: string;
  readonly sessionId: string;
  readonly kind: RequestKind;
  readonly signal: AbortSignal;
  /** False once the request was superseded, cancelled or finished: deliver nothing then. */
  isCurrent(): boolean;
}

interface Entry extends RequestHandle {
  readonly controller: AbortController;
}

/**
 * Owns the in-flight LLM requests: at most one per session and kind (protocol.md section 5). Starting a
 * request aborts its predecessor; cancelling aborts and forgets. Retiring a finished request removes it
 * only if it is still the current one, so a late-finishing, superseded request can never remove (or
 * block) its successor: the replaced backend had exactly that race.
 */
export class RequestManager {
  readonly #bySession = new Map<string, Map<RequestKind, Entry>>();
  #inFlight = 0;

  start(sessionId: string, kind: RequestKind): RequestHandle {
    this.cancel(sessionId, [kind]);
    const controller = new AbortController();
    const entry: Entry = {
      requestId: randomUUID(),
      sessionId,
      kind,
      controller,
      signal: controller.signal,
      isCurrent: () => this.#bySession.get(sessionId)?.get(kind) === entry && !controller.signal.aborted,
    };
    let kinds = this.#bySession.get(sessionId);
    if (!kinds) {
      kinds = new Map();
      this.#bySession.set(sessionId, kinds);
    }
    kinds.set(kind, entry);
    this.#inFlight++;
    return entry;
  }

  /** Aborts the session's requests of the given kinds (all by default). */
  cancel(sessionId: string, kinds: readonly RequestKind[] = ['generate', 'predict']): void {
    const active = this.#bySession.get(sessionId);
    if (!active) return;
    for (const kind of kinds) {
      const entry = active.get(kind);
      if (!entry) continue;
      active.delete(kind);
      this.#inFlight--;
      entry.controller.abort(new RequestCancelledError(`${kind} request ${entry.requestId} cancelled`));
    }
    if (active.size === 0) this.#bySession.delete(sessionId);
  }

  /** Retires a request that completed (or failed) on its own; a no-op unless it is still current. */
  finish(handle: RequestHandle): void {
    const active = this.#bySession.get(handle.sessionId);
    if (!active || active.get(handle.kind) !== handle) return;
    active.delete(handle.kind);
    this.#inFlight--;
    if (active.size === 0) this.#bySession.delete(handle.sessionId);
  }

  /** Aborts everything (shutdown). */
  cancelAll(): void {
    for (const sessionId of [...this.#bySession.keys()]) this.cancel(sessionId);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  currentRequestId(sessionId: string, kind: RequestKind): string | null {
    return this.#bySession.get(sessionId)?.get(kind)?.requestId ?? null;
  }
}
