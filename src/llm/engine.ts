import type { ServiceState } from '../stt/engine.js';

/** Everything the LLM needs to know about a conversation to propose replies. Built by dialogue/. */
export interface DialogueContext {
  scenarioDescription: string | null;
  userProfile: Profile | null;
  targetProfile: Profile | null;
  /** Messages the client brought from before this session (`history_messages`). */
  historyMessages: readonly ContextMessage[];
  /** Messages recorded or chosen in this session, in order. */
  sessionMessages: readonly ContextMessage[];
  /** The messages the user focused on (a subset of the two lists above), in order. */
  focusedMessages: readonly ContextMessage[];
  /** What the user typed about what they want to say (`user_corpus`), or null. */
  userIntent: string | null;
  /** Modification requests ("more polite", ...), oldest first. */
  modifications: readonly string[];
}

export interface ContextMessage {
  messageId: string;
  sender: string;
  content: string;
}

export interface Profile {
  name: string | null;
  age: number | null;
  gender: string | null;
  relations: string[];
  personalities: string[];
  preferences: string[];
  taboos: string[];
  common_topics: string[];
}

export interface SuggestionRequest {
  /** The protocol request id, for logs and for the upstream's attribution. */
  requestId: string;
  sessionId: string;
  /** How many suggestions to return (1..5). */
  count: number;
  context: DialogueContext;
}

/**
 * Where streamed suggestion text goes. `write` returns false when the receiving side is over its
 * high-water mark: the engine must then wait for `drained()` before it reads more from upstream.
 */
export interface SuggestionSink {
  /** `delta` is the next piece of suggestion number `index` (0-based). */
  write(index: number, delta: string): boolean;
  /** Resolves when the receiver can take more; rejects (SlowConsumerError) when it never will. */
  drained(): Promise<void>;
}

export interface PredictionRequest {
  requestId: string;
  sessionId: string;
  context: DialogueContext;
  /** The reply the user just chose. */
  selectedContent: string;
}

export const TENDENCIES = ['合作', '对抗', '中立', '探索', '安抚'] as const;
export const MOODS = ['积极', '消极', '平静', '好奇', '困惑'] as const;
export const TONES = ['正式', '随意', '坚定', '委婉', '幽默'] as const;

export interface OpinionPrediction {
  tendency: (typeof TENDENCIES)[number];
  mood: (typeof MOODS)[number];
  tone: (typeof TONES)[number];
}

export interface LlmEngine {
  readonly name: 'openrouter' | 'mock';
  /**
   * Streams suggestions into `sink` and resolves with the final list (at most `count`, exactly `count`
   * when the model gave that many). Rejects with a VoxgateError (LlmServiceError, ServiceTimeoutError,
   * LlmBusyError, SlowConsumerError) or with the signal's reason when aborted. Aborting must cancel the
   * upstream request at once.
   */
  generateSuggestions(request: SuggestionRequest, sink: SuggestionSink, signal: AbortSignal): Promise<string[]>;
  /** Predicts the other person's next stance; values are checked against the fixed lists. */
  predictOpinion(request: PredictionRequest, signal: AbortSignal): Promise<OpinionPrediction>;
  health(): LlmHealth;
  close(): Promise<void>;
}

export interface LlmHealth {
  engine: 'openrouter' | 'mock';
  status: ServiceState;
  reason: string | null;
  model: string | null;
  inFlight: number;
  queued: number;
}
