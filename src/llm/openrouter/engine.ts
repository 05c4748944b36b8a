import type { Metrics } from '../../metrics/metrics.js';
import type { Logger } from 'pino';
import { LlmBusyError, LlmServiceError, ServerShuttingDownError, VoxgateError } from '../../errors.js';
import type {
  LlmEngine,
  LlmHealth,
  OpinionPrediction,
  PredictionRequest,
  SuggestionRequest,
  SuggestionSink,
} from '../engine.js';
import { RequestLimiter } from '../limiter.js';
import { PromptBuilder, type BuiltPrompt } from '../prompt-builder.js';
import { CallScope } from './call-scope.js';
import { OpenRouterClient, type ChatCompletionBody, type ContentConsumer } from './client.js';
import { parsePrediction } from './prediction.js';
import { SuggestionsParser } from './suggestions-parser.js';

export interface OpenRouterEngineOptions {
  /** e.g. `https://openrouter.ai/api/v1`. */
  baseUrl: string;
  apiKey: string;
  model: string;
  /** Sent as `models: [model, ...fallbackModels]` so OpenRouter can switch models itself. */
  fallbackModels: readonly string[];
  temperature: number;
  maxTokens: number;
  /** Deadline of one engine call, from the call to the last byte: limiter queue, retries and backoff included. */
  requestTimeoutMs: number;
  /** Longest gap between body chunks (keep-alive comments count); also bounds the wait for headers. */
  idleTimeoutMs: number;
  /** Retries before the first token (0 = none). */
  maxRetries: number;
  retryBaseDelayMs: number;
  /** Upstream requests at once, for the whole process. */
  maxInFlight: number;
  /** Calls waiting for a slot; beyond that LlmBusyError. */
  maxQueue: number;
  /** `HTTP-Referer` and `X-Title` attribution headers; empty or null leaves them out. */
  referer: string | null;
  title: string | null;
  logger: Logger;
  /** Token counts of completed requests go here (null: not counted). */
  metrics?: Metrics | null;
  /** Prompt folder override (tests, deployments that ship prompts elsewhere). */
  promptsDir?: string;
}

// Consecutive failed calls (not aborts) after which health reports `degraded`.
const DEGRADED_AFTER_FAILURES = 3;

/**
 * Feeds streamed content through the suggestions parser into the sink. `write()` returning false is
 * remembered and handed to the client as a pending drain, so reading from upstream stops until the
 * receiver catches up. Suggestions past `count` are parsed (to validate the JSON) but not sent.
 */
class SuggestionStream implements ContentConsumer {
  readonly #sink: SuggestionSink;
  readonly #count: number;
  readonly #parser: SuggestionsParser;
  #needsDrain = false;

  constructor(count: number, sink: SuggestionSink) {
    this.#count = count;
    this.#sink = sink;
    this.#parser = new SuggestionsParser(this.#onDelta);
  }

  onContent(text: string): void {
    this.#parser.push(text);
  }

  pending(): Promise<void> | null {
    if (!this.#needsDrain) return null;
    this.#needsDrain = false;
    return this.#sink.drained();
  }

  finish(): string[] {
    const suggestions = this.#parser.end();
    return suggestions.length > this.#count ? suggestions.slice(0, this.#count) : suggestions;
  }

  readonly #onDelta = (index: number, delta: string): void => {
    if (index >= this.#count) return;
    if (!this.#sink.write(index, delta)) this.#needsDrain = true;
  };
}

/** Collects the whole prediction reply: it is short and only valid once complete. */
class PredictionText implements ContentConsumer {
  text = '';

  onContent(text: string): void {
    this.text += text;
  }

  pending(): null {
    return null;
  }
}

/** The real LLM engine: OpenRouter chat completions, streamed, behind a process-wide request limiter. */
export class OpenRouterEngine implements LlmEngine {
  readonly name = 'openrouter' as const;
  readonly #options: OpenRouterEngineOptions;
  readonly #client: OpenRouterClient;
  readonly #limiter: RequestLimiter;
  readonly #prompts: PromptBuilder;
  readonly #log: Logger;
  #failuresInARow = 0;
  #lastFailure: string | null = null;
  #closing: Promise<void> | null = null;

  constructor(options: OpenRouterEngineOptions) {
    this.#options = options;
    this.#log = options.logger.child({ engine: 'openrouter' });
    this.#prompts = new PromptBuilder(options.promptsDir === undefined ? {} : { promptsDir: options.promptsDir });
    this.#limiter = new RequestLimiter({ maxInFlight: options.maxInFlight, maxQueue: options.maxQueue });
    this.#client = new OpenRouterClient({
      baseUrl: options.baseUrl,
      apiKey: options.apiKey,
      referer: options.referer,
      title: options.title,
      idleTimeoutMs: options.idleTimeoutMs,
      maxRetries: options.maxRetries,
      retryBaseDelayMs: options.retryBaseDelayMs,
      connections: options.maxInFlight,
      logger: this.#log,
      metrics: options.metrics ?? null,
    });
  }

  async generateSuggestions(request: SuggestionRequest, sink: SuggestionSink, signal: AbortSignal): Promise<string[]> {
    const stream = new SuggestionStream(request.count, sink);
    const prompt = this.#prompts.suggestions(request.context, request.count);
    return this.#call(request.requestId, prompt, stream, signal, () => stream.finish());
  }

  async predictOpinion(request: PredictionRequest, signal: AbortSignal): Promise<OpinionPrediction> {
    const reply = new PredictionText();
    const prompt = this.#prompts.prediction(request.context, request.selectedContent);
    return this.#call(request.requestId, prompt, reply, signal, () => parsePrediction(reply.text));
  }

  health(): LlmHealth {
    const isDegraded = this.#failuresInARow >= DEGRADED_AFTER_FAILURES;
    return {
      engine: 'openrouter',
      status: this.#closing !== null ? 'unavailable' : isDegraded ? 'degraded' : 'healthy',
      reason: this.#closing !== null ? 'closing' : isDegraded ? this.#lastFailure : null,
      model: this.#options.model,
      inFlight: this.#limiter.inFlight,
      queued: this.#limiter.queued,
    };
  }

  /** Fails queued calls, lets running ones finish (the dialogue layer aborts them first), closes the pool. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#limiter.close();
      await this.#client.close();
    })();
    return this.#closing;
  }

  /** Shutdown past its drain budget: fails queued calls and destroys the connections under running ones. */
  async destroy(): Promise<void> {
    this.#closing ??= Promise.resolve();
    this.#limiter.close();
    await this.#client.destroy();
  }

  /** Runs one upstream call under the limiter and the call's deadline; `finish` validates what arrived. */
  async #call<T>(requestId: string, prompt: BuiltPrompt, consumer: ContentConsumer, signal: AbortSignal,
    finish: () => T): Promise<T> {
    if (this.#closing !== null) throw new ServerShuttingDownError('llm engine is closing');
    const scope = new CallScope(signal, this.#options.requestTimeoutMs);
    try {
      await this.#limiter.acquire(scope.signal);
      try {
        await this.#client.stream({ requestId, body: this.#body(prompt), consumer, scope });
      } finally {
        this.#limiter.release();
      }
      const result = finish();
      this.#failuresInARow = 0;
      return result;
    } catch (err) {
      // A caller's abort or our own overload says nothing about the upstream's health.
      if (!signal.aborted && !(err instanceof LlmBusyError)) this.#recordFailure(requestId, err);
      throw err;
    } finally {
      scope.dispose();
    }
  }

  #body(prompt: BuiltPrompt): ChatCompletionBody {
    const options = this.#options;
    const body: ChatCompletionBody = {
      model: options.model,
      messages: prompt.messages,
      temperature: options.temperature,
      max_tokens: options.maxTokens,
      response_format: prompt.responseFormat,
    };
    if (options.fallbackModels.length > 0) body.models = [options.model, ...options.fallbackModels];
    return body;
  }

  #recordFailure(requestId: string, err: unknown): void {
    this.#failuresInARow++;
    this.#lastFailure = err instanceof Error ? err.message : String(err);
    const code = err instanceof VoxgateError ? err.code : null;
    const details = err instanceof VoxgateError ? err.details : null;
    const retryable = err instanceof LlmServiceError ? err.retryable : null;
    this.#log.warn({ err, requestId, code, details, retryable }, 'llm request failed');
  }
}
