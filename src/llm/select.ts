import type { Metrics } from '../metrics/metrics.js';
import type { Logger } from 'pino';
import type { Config } from '../config/load.js';
import type { LlmEngine } from './engine.js';
import { MockLlmEngine } from './mock-engine.js';
import { OpenRouterEngine } from './openrouter/engine.js';

// Before the first token, failed calls are retried after 250 ms, 500 ms, ... (jittered, capped by the deadline).
const RETRY_BASE_DELAY_MS = 250;

/** OpenRouter when an API key is configured; otherwise the mock engine, announced in the log and health. */
export function createLlmEngine(config: Config['llm'], logger: Logger, metrics: Metrics | null = null): LlmEngine {
  const log = logger.child({ component: 'llm' });
  if (config.engine === 'mock' || config.apiKey === null) {
    log.warn('no OPENROUTER_API_KEY: reply suggestions come from the mock LLM engine (marked "(mock)")');
    return new MockLlmEngine({ deltaDelayMs: config.mockDeltaDelayMs, logger: log });
  }
  return new OpenRouterEngine({
    baseUrl: config.baseUrl,
    apiKey: config.apiKey,
    model: config.model,
    fallbackModels: config.fallbackModels,
    temperature: config.temperature,
    maxTokens: config.maxTokens,
    requestTimeoutMs: config.requestTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    maxRetries: config.maxRetries,
    retryBaseDelayMs: RETRY_BASE_DELAY_MS,
    maxInFlight: config.maxInFlight,
    maxQueue: config.maxQueue,
    referer: config.referer || null,
    title: config.title || null,
    logger: log,
    metrics,
  });
}
