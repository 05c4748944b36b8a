import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ServerShuttingDownError } from '../errors.js';
import { untilAborted } from './abortable.js';
import {
  MOODS,
  TENDENCIES,
  TONES,
  type DialogueContext,
  type LlmEngine,
  type LlmHealth,
  type OpinionPrediction,
  type PredictionRequest,
  type SuggestionRequest,
  type SuggestionSink,
} from './engine.js';

export interface MockLlmEngineOptions {
  /** Pause before each streamed delta, like a model's token rate (default 20 ms; 0 = no pause). */
  deltaDelayMs?: number;
  logger: Logger;
}

// Code points per delta: enough to show streaming without one event per character.
const DELTA_CODE_POINTS = 4;
const SNIPPET_CODE_POINTS = 16;

function subjectOf(context: DialogueContext): string {
  const text = context.sessionMessages.at(-1)?.content ?? context.scenarioDescription ?? '';
  const points = Array.from(text.trim());
  if (points.length === 0) return '…';
  return points.length > SNIPPET_CODE_POINTS ? `${points.slice(0, SNIPPET_CODE_POINTS).join('')}…` : points.join('');
}

/**
 * The offline stand-in for the LLM (no key, tests, demos). Its replies are visibly fake ("(mock) ...")
 * so nobody mistakes them for real suggestions, but it behaves like the real engine where the dialogue
 * layer can tell: deltas over time, sink backpressure, abort, exactly `count` distinct suggestions.
 */
export class MockLlmEngine implements LlmEngine {
  readonly name = 'mock' as const;
  readonly #deltaDelayMs: number;
  readonly #log: Logger;
  #inFlight = 0;
  #isClosed = false;

  constructor(options: MockLlmEngineOptions) {
    this.#deltaDelayMs = options.deltaDelayMs ?? 20;
    this.#log = options.logger.child({ component: 'llm', engine: 'mock' });
  }

  async generateSuggestions(request: SuggestionRequest, sink: SuggestionSink, signal: AbortSignal): Promise<string[]> {
    if (this.#isClosed) throw new ServerShuttingDownError('llm engine is closing');
    const subject = subjectOf(request.context);
    const suggestions = Array.from(
      { length: request.count },
      (_, i) => `(mock) 第${i + 1}条回复：关于“${subject}”`,
    );
    this.#inFlight++;
    try {
      for (let index = 0; index < suggestions.length; index++) {
        const points = Array.from(suggestions[index] ?? '');
        for (let at = 0; at < points.length; at += DELTA_CODE_POINTS) {
          await this.#pause(signal);
          if (!sink.write(index, points.slice(at, at + DELTA_CODE_POINTS).join(''))) {
            await untilAborted(sink.drained(), signal);
          }
        }
      }
      this.#log.debug({ requestId: request.requestId, count: request.count }, 'mock suggestions generated');
      return suggestions;
    } finally {
      this.#inFlight--;
    }
  }

  async predictOpinion(request: PredictionRequest, signal: AbortSignal): Promise<OpinionPrediction> {
    if (this.#isClosed) throw new ServerShuttingDownError('llm engine is closing');
    await this.#pause(signal);
    // Deterministic: the same chosen reply always gives the same prediction.
    let hash = 0;
    for (const ch of request.selectedContent) hash = (hash * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
    return {
      tendency: TENDENCIES[hash % TENDENCIES.length] ?? TENDENCIES[0],
      mood: MOODS[(hash >>> 3) % MOODS.length] ?? MOODS[0],
      tone: TONES[(hash >>> 6) % TONES.length] ?? TONES[0],
    };
  }

  health(): LlmHealth {
    return {
      engine: 'mock',
      status: this.#isClosed ? 'unavailable' : 'degraded',
      reason: this.#isClosed ? 'closing' : 'mock engine (no OPENROUTER_API_KEY): replies are stand-ins, no LLM is called',
      model: null,
      inFlight: this.#inFlight,
      queued: 0,
    };
  }

  async close(): Promise<void> {
    this.#isClosed = true;
  }

  async #pause(signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw signal.reason;
    if (this.#deltaDelayMs <= 0) return;
    try {
      await delay(this.#deltaDelayMs, undefined, { signal });
    } catch (err) {
      // timers/promises rejects with its own AbortError; callers expect the signal's reason.
      if (signal.aborted) throw signal.reason;
      throw err;
    }
  }
}
