import type { Metrics } from '../../metrics/metrics.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Pool } from 'undici';
import { LlmServiceError, ServiceTimeoutError, VoxgateError } from '../../errors.js';
import type { CallScope } from './call-scope.js';
import { SseDecoder } from './sse.js';
import { untilAborted } from '../abortable.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** The request body minus the streaming flags, which this client always sets itself. */
export interface ChatCompletionBody {
  model: string;
  /** OpenRouter's fallback list (primary first); omitted when there are no fallbacks. */
  models?: string[];
  messages: ChatMessage[];
  temperature: number;
  max_tokens: number;
  response_format: unknown;
}

/** Where the assistant's text goes as it streams. */
export interface ContentConsumer {
  /** The next piece of assistant content (never empty). May throw a VoxgateError to fail the call. */
  onContent(text: string): void;
  /**
   * Asked after each network chunk: a promise means "stop reading until it settles" (backpressure).
   * A rejection (SlowConsumerError) aborts the upstream request and fails the call with it.
   */
  pending(): Promise<void> | null;
}

export interface CompletionUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  cost?: number;
}

export interface CompletionResult {
  model: string | null;
  finishReason: string | null;
  usage: CompletionUsage | null;
  attempts: number;
}

export interface OpenRouterClientOptions {
  /** e.g. `https://openrouter.ai/api/v1`; `/chat/completions` is appended. */
  baseUrl: string;
  apiKey: string;
  /** Attribution headers; omitted when empty. */
  referer?: string | null;
  title?: string | null;
  /** Longest silence allowed between body chunks (keep-alive comments count as data). */
  idleTimeoutMs: number;
  /** Retries after the first attempt, only before the first token. */
  maxRetries: number;
  /** First backoff step; doubles per retry, with jitter. */
  retryBaseDelayMs: number;
  /** Keep-alive connections to the upstream. */
  connections: number;
  /** Counts the tokens of each completed request (voxgate_llm_tokens_total). */
  metrics?: Metrics | null;
  logger: Logger;
}

export interface CompletionCall {
  requestId: string;
  body: ChatCompletionBody;
  consumer: ContentConsumer;
  scope: CallScope;
}

// Statuses that say "try again later" rather than "this request is wrong".
const RETRYABLE_STATUS = new Set([408, 429, 502, 503]);

interface UpstreamErrorBody {
  code?: unknown;
  message?: unknown;
}

/** The fields of a streamed chunk we read; checked by hand because this runs once per token. */
interface CompletionChunk {
  model?: unknown;
  error?: UpstreamErrorBody;
  choices?: Array<{ delta?: { content?: unknown }; finish_reason?: unknown }>;
  usage?: CompletionUsage;
}

function upstreamError(status: number | null, error: UpstreamErrorBody, retryable: boolean,
  retryAfterSeconds: number | null): LlmServiceError {
  const message = typeof error.message === 'string' ? error.message : 'no message';
  const code = error.code === undefined ? 'none' : String(error.code);
  const details = status === null ? `stream error, code=${code}` : `status=${status} code=${code}`;
  return new LlmServiceError(`openrouter error: ${message}`, { details, retryable, retryAfterSeconds });
}

/** Retry-After is either delta-seconds or an HTTP date. */
function parseRetryAfter(value: string | string[] | undefined): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text === '') return null;
  const seconds = Number(text);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

/**
 * The state of one HTTP attempt: SSE framing, chunk checks, and whether any token arrived (after which the
 * call must not be retried). The data handler is bound once per attempt, not per token.
 */
class StreamAttempt {
  readonly decoder: SseDecoder;
  readonly #consumer: ContentConsumer;
  isDone = false;
  hasContent = false;
  model: string | null = null;
  finishReason: string | null = null;
  usage: CompletionUsage | null = null;

  constructor(consumer: ContentConsumer) {
    this.#consumer = consumer;
    this.decoder = new SseDecoder(this.#onData);
  }

  readonly #onData = (data: string): void => {
    if (this.isDone) return;
    if (data === '[DONE]') {
      this.isDone = true;
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch (err) {
      throw new LlmServiceError('malformed chunk from openrouter', { details: 'chunk is not JSON', cause: err });
    }
    if (typeof parsed !== 'object' || parsed === null) {
      throw new LlmServiceError('malformed chunk from openrouter', { details: 'chunk is not an object' });
    }
    const chunk = parsed as CompletionChunk;
    if (typeof chunk.error === 'object' && chunk.error !== null) {
      const retryable = !this.hasContent && RETRYABLE_STATUS.has(Number(chunk.error.code));
      throw upstreamError(null, chunk.error, retryable, null);
    }
    if (typeof chunk.model === 'string') this.model = chunk.model;
    const choice = chunk.choices?.[0];
    if (choice !== undefined) {
      const content = choice.delta?.content;
      if (typeof content === 'string' && content.length > 0) {
        this.hasContent = true;
        this.#consumer.onContent(content);
      }
      const finishReason = choice.finish_reason;
      if (finishReason === 'error') {
        throw new LlmServiceError('openrouter stream ended with an error', {
          details: 'finish_reason=error',
          retryable: false,
        });
      }
      if (typeof finishReason === 'string') this.finishReason = finishReason;
    }
    if (typeof chunk.usage === 'object' && chunk.usage !== null) this.usage = chunk.usage;
  };
}

/**
 * Streams chat completions from OpenRouter over a keep-alive undici Pool. Retries 408/429/502/503 and
 * connection failures with jittered exponential backoff (Retry-After wins when given), but only until
 * the first token arrived: after that a retry would show the user a second, different text. Every wait
 * (limiter, backoff, headers, body, a full consumer) ends when the call's scope aborts.
 */
export class OpenRouterClient {
  readonly #pool: Pool;
  readonly #path: string;
  readonly #headers: Record<string, string>;
  readonly #idleTimeoutMs: number;
  readonly #maxRetries: number;
  readonly #retryBaseDelayMs: number;
  readonly #log: Logger;
  #isClosed = false;

  readonly #metrics: Metrics | null;
  constructor(options: OpenRouterClientOptions) {
    const base = new URL(options.baseUrl);
    this.#path = `${base.pathname.replace(/\/+$/, '')}/chat/completions`;
    this.#pool = new Pool(base.origin, {
      connections: options.connections,
      keepAliveTimeout: 30_000,
      // Our idle timer owns both: it pauses while we deliberately stop reading for a slow consumer,
      // which undici's bodyTimeout would count as silence.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    this.#headers = {
      authorization: `Bearer ${options.apiKey}`,
      'content-type': 'application/json',
      accept: 'text/event-stream',
    };
    if (options.referer) this.#headers['http-referer'] = options.referer;
    if (options.title) this.#headers['x-title'] = options.title;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#maxRetries = options.maxRetries;
    this.#retryBaseDelayMs = options.retryBaseDelayMs;
    this.#log = options.logger;
    this.#metrics = options.metrics ?? null;
  }

  #countTokens(usage: CompletionUsage): void {
    if (this.#metrics === null) return;
    // Upstream numbers: only finite, non-negative ones are counted (a counter must never go down).
    const count = (kind: 'prompt' | 'completion', value: number | undefined): void => {
      if (typeof value === 'number' && Number.isFinite(value) && value > 0) this.#metrics!.llmTokens.inc({ kind }, value);
    };
    count('prompt', usage.prompt_tokens);
    count('completion', usage.completion_tokens);
  }

  async stream(call: CompletionCall): Promise<CompletionResult> {
    const { scope } = call;
    const payload = JSON.stringify({ ...call.body, stream: true, stream_options: { include_usage: true } });
    const startedAt = performance.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.#attempt(call, payload, attempt);
        if (result.usage) this.#countTokens(result.usage);
        this.#log.info(
          {
            requestId: call.requestId,
            model: result.model,
            attempts: attempt,
            promptTokens: result.usage?.prompt_tokens ?? null,
            completionTokens: result.usage?.completion_tokens ?? null,
            totalTokens: result.usage?.total_tokens ?? null,
            cost: result.usage?.cost ?? null,
            finishReason: result.finishReason,
            durationMs: Math.round(performance.now() - startedAt),
          },
          'llm request completed',
        );
        return result;
      } catch (err) {
        // Caller abort, deadline, idle stall or slow consumer: the scope's reason is the answer.
        if (scope.signal.aborted) throw scope.signal.reason;
        if (!(err instanceof LlmServiceError) || !err.retryable || attempt > this.#maxRetries) throw err;
        // A closed pool refuses every attempt: retrying would only wait out the backoff.
        if (this.#isClosed) throw err;
        const delayMs = this.#backoffMs(attempt, err.retryAfterSeconds);
        if (delayMs >= scope.remainingMs()) throw err;
        this.#log.warn(
          { requestId: call.requestId, attempt, delayMs: Math.round(delayMs), code: err.code, details: err.details },
          'llm request failed before the first token, retrying',
        );
        try {
          await sleep(delayMs, undefined, { signal: scope.signal });
        } catch (sleepErr) {
          if (scope.signal.aborted) throw scope.signal.reason;
          throw sleepErr;
        }
      }
    }
  }

  /** Lets in-flight requests finish, then closes the connections. */
  close(): Promise<void> {
    this.#isClosed = true;
    return this.#pool.close();
  }

  /** Closes every connection now; in-flight requests fail. */
  destroy(): Promise<void> {
    this.#isClosed = true;
    return this.#pool.destroy();
  }

  /** Retry-After when given; otherwise base * 2^(attempt-1), jittered over its upper half. */
  #backoffMs(attempt: number, retryAfterSeconds: number | null): number {
    if (retryAfterSeconds !== null) return retryAfterSeconds * 1000;
    const ceilingMs = this.#retryBaseDelayMs * 2 ** (attempt - 1);
    return ceilingMs / 2 + Math.random() * (ceilingMs / 2);
  }

  async #attempt(call: CompletionCall, payload: string, attempt: number): Promise<CompletionResult> {
    const { scope, consumer } = call;
    const stream = new StreamAttempt(consumer);
    let isPaused = false;
    const idleTimer = setTimeout(() => {
      // A timer that fires while we wait for the consumer is not upstream silence; refresh() re-arms it.
      if (!isPaused) {
        scope.abort(new ServiceTimeoutError('openrouter sent nothing for too long', {
          details: `idle > ${this.#idleTimeoutMs} ms`,
        }));
      }
    }, this.#idleTimeoutMs);
    try {
      const response = await this.#pool.request({
        path: this.#path,
        method: 'POST',
        headers: { ...this.#headers, 'x-request-id': call.requestId },
        body: payload,
        signal: scope.signal,
      });
      idleTimer.refresh();
      if (response.statusCode < 200 || response.statusCode > 299) {
        throw await this.#statusError(response.statusCode, response.headers['retry-after'], response.body);
      }
      for await (const bytes of response.body) {
        idleTimer.refresh();
        stream.decoder.push(bytes as Buffer);
        const pending = consumer.pending();
        if (pending !== null) {
          isPaused = true;
          try {
            await untilAborted(pending, scope.signal);
          } catch (err) {
            // Destroy the upstream request now: a consumer that will never drain must not keep it open.
            scope.abort(err);
            throw err;
          }
          isPaused = false;
          idleTimer.refresh();
        }
      }
      stream.decoder.end();
      if (!stream.isDone) {
        throw new LlmServiceError('openrouter stream ended before [DONE]', {
          details: `attempt ${attempt}`,
          retryable: !stream.hasContent,
        });
      }
      return { model: stream.model, finishReason: stream.finishReason, usage: stream.usage, attempts: attempt };
    } catch (err) {
      if (err instanceof VoxgateError || scope.signal.aborted) throw err;
      // undici socket/connect errors: the network failed, not the request.
      const code = (err as { code?: unknown }).code;
      throw new LlmServiceError('connection to openrouter failed', {
        details: typeof code === 'string' ? code : null,
        retryable: !stream.hasContent,
        cause: err,
      });
    } finally {
      clearTimeout(idleTimer);
    }
  }

  async #statusError(status: number, retryAfter: string | string[] | undefined,
    body: AsyncIterable<unknown> & { text(): Promise<string> }): Promise<LlmServiceError> {
    const text = await body.text();
    let error: UpstreamErrorBody = { message: text.slice(0, 200) };
    try {
      const parsed = JSON.parse(text) as { error?: UpstreamErrorBody };
      if (typeof parsed.error === 'object' && parsed.error !== null) error = parsed.error;
    } catch {
      // Not JSON (a proxy's HTML page): keep the start of the text as the message.
    }
    return upstreamError(status, error, RETRYABLE_STATUS.has(status), parseRetryAfter(retryAfter));
  }
}
