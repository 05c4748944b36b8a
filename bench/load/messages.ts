// Every message between the coordinator and its client processes (over the child_process IPC channel).
// Timestamps are epoch milliseconds (Date.now() plus a fraction from performance.now()), so samples from
// different processes share one clock.

/** What a simulated user measures. */
export type MetricName =
  | 'stt_ms' // message_end sent -> message_recorded received
  | 'first_delta_ms' // manual_generate sent -> first llm_response_delta of its request
  | 'llm_response_ms' // manual_generate sent -> its llm_response
  | 'prediction_ms'; // user_selected_response sent -> opinion_prediction_response

export const METRICS: readonly MetricName[] = ['stt_ms', 'first_delta_ms', 'llm_response_ms', 'prediction_ms'];

/** One measurement: [metric index in METRICS, start (epoch ms), duration (ms)]. */
export type Sample = [number, number, number];

/** One failure: [kind, epoch ms]. Kinds: wrong_transcript, error:<CODE>, timeout:<phase>, disconnect, connect_failed. */
export type Failure = [string, number];

export interface UserWorkerConfig {
  wsUrl: string;
  workerIndex: number;
  workerCount: number;
  audio: 'base64' | 'binary';
  /** Word -> tone frequency of the model under test. */
  frequenciesHz: Array<[string, number]>;
  minWords: number;
  maxWords: number;
  thinkMs: number;
  timeoutMs: number;
  /** The server generates by itself after each recording (AUTO_SUGGEST): one extra generating_response. */
  autoSuggest: boolean;
  responseCount: number;
  seed: number;
}

export type ToUserWorker =
  | { type: 'config'; config: UserWorkerConfig }
  /** Run this many users from now on (users only get added), starting the new ones over staggerMs. */
  | { type: 'users'; count: number; staggerMs: number }
  | { type: 'stop' };

export type FromUserWorker =
  | { type: 'ready' }
  | { type: 'samples'; samples: Sample[]; failures: Failure[]; turns: number; wrongExamples: string[] }
  | { type: 'stopped' };

export interface IdleWorkerConfig {
  wsUrl: string;
  timeoutMs: number;
}

export type ToIdleWorker =
  | { type: 'config'; config: IdleWorkerConfig }
  /** Open this many more connections, each with a session; reply `opened`. */
  | { type: 'open'; count: number }
  /** How many of the opened connections are still open. */
  | { type: 'count' }
  | { type: 'stop' };

export type FromIdleWorker =
  | { type: 'ready' }
  | { type: 'opened'; open: number; failures: Record<string, number>; firstFailure: string | null }
  | { type: 'count'; open: number; closedByServer: number }
  | { type: 'stopped' };
