import type { Metrics } from '../metrics/metrics.js';
import { SlowConsumerError, toVoxgateError } from '../errors.js';
import type { LlmEngine, SuggestionSink } from '../llm/engine.js';
import {
  errorEvent,
  llmResponse,
  llmResponseDelta,
  opinionPrediction,
  statusUpdate,
  type ServerEvent,
} from '../protocol/server-events.js';
import type { RequestHandle, RequestManager } from './request-manager.js';
import type { Session } from './session.js';
import type { SessionManager } from './session-manager.js';

/** Deltas that arrive faster than this are merged into one event per suggestion (fewer, larger frames). */
export const DELTA_FLUSH_INTERVAL_MS = 20;
/**
 * A merged batch is flushed early at this size, so a fast upstream can't pile text up in the sink between
 * flushes: the socket's buffer then tells the truth about what the client has not read, and one flush
 * passes the high-water mark by at most this much (times the suggestions' JSON overhead).
 */
export const DELTA_FLUSH_MAX_CHARS = 16 * 1024;

export interface ReplyRunnerOptions {
  llm: LlmEngine;
  sessions: SessionManager;
  requests: RequestManager;
  metrics?: Metrics;
}

/**
 * Runs the LLM work of a session under protocol.md section 5: starts a request (which supersedes the
 * previous one of its kind), streams what comes back to the session's connections, and delivers nothing
 * once the request is no longer current.
 */
export class ReplyRunner {
  readonly #options: ReplyRunnerOptions;

  constructor(options: ReplyRunnerOptions) {
    this.#options = options;
  }

  /** manual_generate, user_modification and auto-suggest: cancel both kinds, then generate. */
  generate(session: Session, userIntent: string | null): RequestHandle {
    const { requests, sessions } = this.#options;
    requests.cancel(session.id);
    const handle = requests.start(session.id, 'generate');
    session.setStatus('generating_response');
    sessions.broadcast(session, statusUpdate(session.id, 'generating_response'));
    void this.#runGeneration(session, handle, userIntent);
    return handle;
  }

  /** After user_selected_response: supersedes only an older prediction. */
  predict(session: Session, selectedContent: string): RequestHandle {
    const handle = this.#options.requests.start(session.id, 'predict');
    void this.#runPrediction(session, handle, selectedContent);
    return handle;
  }

  async #runGeneration(session: Session, handle: RequestHandle, userIntent: string | null): Promise<void> {
    const { llm, requests } = this.#options;
    const startedAt = performance.now();
    const metrics = this.#options.metrics;
    const sink = new SessionDeltaSink(session, handle, () => metrics?.llmTimeToFirstToken.observe((performance.now() - startedAt) / 1000));
    let events: ServerEvent[];
    try {
      const suggestions = await llm.generateSuggestions(
        { requestId: handle.requestId, sessionId: session.id, count: session.responseCount, context: session.dialogueContext(userIntent) },
        sink,
        handle.signal,
      );
      sink.flush();
      if (handle.isCurrent()) metrics?.llmGeneration.observe((performance.now() - startedAt) / 1000);
      metrics?.llmRequests.inc({ kind: 'generate', outcome: handle.isCurrent() ? 'ok' : 'superseded' });
      events = [llmResponse(session.id, suggestions.slice(0, session.responseCount), handle.requestId)];
      session.log.info(
        { requestId: handle.requestId, suggestions: suggestions.length, ms: Math.round(performance.now() - startedAt) },
        'suggestions delivered',
      );
    } catch (err) {
      sink.dispose();
      metrics?.llmRequests.inc({ kind: 'generate', outcome: handle.isCurrent() ? 'error' : 'superseded' });
      if (!handle.isCurrent()) return;
      const error = toVoxgateError(err);
      session.log.warn({ err: error, code: error.code, requestId: handle.requestId }, 'suggestion generation failed');
      // The error only: the app replaces the suggestions on screen with every llm_response, so an empty
      // one would erase good suggestions. No suggestion is ever invented.
      events = [errorEvent(session.id, error, `request_id: ${handle.requestId}`)];
    }
    if (!handle.isCurrent()) return;
    requests.finish(handle);
    if (session.status === 'generating_response') session.settleStatus();
    for (const channel of session.channels) channel.sendAll(events);
  }

  async #runPrediction(session: Session, handle: RequestHandle, selectedContent: string): Promise<void> {
    const { llm, requests, sessions } = this.#options;
    let event: ServerEvent;
    try {
      const prediction = await llm.predictOpinion(
        { requestId: handle.requestId, sessionId: session.id, context: session.dialogueContext(null), selectedContent },
        handle.signal,
      );
      event = opinionPrediction(session.id, prediction, handle.requestId);
      this.#options.metrics?.llmRequests.inc({ kind: 'predict', outcome: handle.isCurrent() ? 'ok' : 'superseded' });
    } catch (err) {
      this.#options.metrics?.llmRequests.inc({ kind: 'predict', outcome: handle.isCurrent() ? 'error' : 'superseded' });
      if (!handle.isCurrent()) return;
      const error = toVoxgateError(err);
      session.log.warn({ err: error, code: error.code, requestId: handle.requestId }, 'opinion prediction failed');
      event = errorEvent(session.id, error, `request_id: ${handle.requestId}`);
    }
    if (!handle.isCurrent()) return;
    requests.finish(handle);
    sessions.broadcast(session, event);
  }
}

/**
 * Carries streamed suggestion text to the session's connections. Deltas are merged per suggestion and
 * flushed at most every DELTA_FLUSH_INTERVAL_MS in one corked batch per connection. When any connection is
 * past its high-water mark, write() returns false and the engine stops reading upstream until drained().
 */
class SessionDeltaSink implements SuggestionSink {
  readonly #session: Session;
  readonly #handle: RequestHandle;
  /** Called once, at the first text of the generation (time to first token). */
  #onFirstText: (() => void) | null;
  readonly #pending: string[] = [];
  #pendingChars = 0;
  #lastFlushAt = 0;
  #flushTimer: NodeJS.Timeout | null = null;
  readonly #flushLater = (): void => {
    this.#flushTimer = null;
    this.flush();
  };

  constructor(session: Session, handle: RequestHandle, onFirstText: () => void) {
    this.#session = session;
    this.#handle = handle;
    this.#onFirstText = onFirstText;
  }

  write(index: number, delta: string): boolean {
    if (!this.#handle.isCurrent()) return true;
    if (this.#onFirstText !== null && delta !== '') {
      this.#onFirstText();
      this.#onFirstText = null;
    }
    this.#pending[index] = (this.#pending[index] ?? '') + delta;
    this.#pendingChars += delta.length;
    const now = performance.now();
    if (now - this.#lastFlushAt >= DELTA_FLUSH_INTERVAL_MS || this.#pendingChars >= DELTA_FLUSH_MAX_CHARS) {
      this.flush();
    } else if (this.#flushTimer === null) {
      this.#flushTimer = setTimeout(this.#flushLater, DELTA_FLUSH_INTERVAL_MS - (now - this.#lastFlushAt));
    }
    return !this.#needsDrain();
  }

  async drained(): Promise<void> {
    for (const channel of [...this.#session.channels]) {
      if (!channel.needsDrain) continue;
      try {
        await channel.drained();
      } catch (err) {
        // A connection that closed while we waited is simply gone: the others still get the suggestions.
        if (channel.isClosed) continue;
        throw err;
      }
    }
    if (this.#session.channels.size === 0 && !this.#handle.signal.aborted) {
      throw new SlowConsumerError('no connection left to receive suggestions');
    }
  }

  flush(): void {
    if (this.#flushTimer !== null) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = null;
    }
    this.#lastFlushAt = performance.now();
    this.#pendingChars = 0;
    if (this.#pending.length === 0 || !this.#handle.isCurrent()) {
      this.#pending.length = 0;
      return;
    }
    const events: ServerEvent[] = [];
    for (let index = 0; index < this.#pending.length; index++) {
      const delta = this.#pending[index];
      if (delta) events.push(llmResponseDelta(this.#session.id, this.#handle.requestId, index, delta));
    }
    this.#pending.length = 0;
    for (const channel of this.#session.channels) channel.sendAll(events);
  }

  dispose(): void {
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    this.#pending.length = 0;
    this.#pendingChars = 0;
  }

  #needsDrain(): boolean {
    for (const channel of this.#session.channels) if (channel.needsDrain) return true;
    return false;
  }
}
