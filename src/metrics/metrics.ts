import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Every metric's name starts with this (docs/metrics.md lists them all). */
export const METRIC_PREFIX = 'voxgate_';

/** Reasons an upgrade is refused: the `reason` label of voxgate_upgrades_refused_total. */
export type UpgradeRefusalReason =
  | 'bad_request'
  | 'shutting_down'
  | 'connection_limit'
  | 'origin'
  | 'credential_missing'
  | 'credential_invalid'
  | 'credential_expired'
  | 'credential_forbidden'
  | 'quota'
  /** /asr: the engine is at capacity, or cannot serve /asr at all (not vosk). */
  | 'stt_busy'
  /** /asr/<model>: a model name outside ASR_MODEL_NAMES. */
  | 'unknown_model';

/** What a scrape reads from the owners of gauge state, at scrape time only (never on a hot path). */
export interface MetricSources {
  connections(): number;
  sessions(): { live: number; detached: number };
  stt(): { activeStreams: number; streamLimit: number | null; queueDepth: number; workers: number };
  llm(): { inFlight: number; queued: number };
}

const LATENCY_BUCKETS_SECONDS = [0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2, 5, 10];
const GENERATION_BUCKETS_SECONDS = [0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];
const STORE_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5];

/**
 * voxgate's own Prometheus registry and every metric in it. Counters and histograms are moved by the
 * owner of each piece of state as it happens; gauges read their owner when scraped (`bindSources`). No
 * label carries a session, connection or owner id: label values come from small fixed sets (event types,
 * error codes, refusal reasons, outcomes).
 */
export class Metrics {
  readonly registry = new Registry();

  readonly connectionsOpened = this.#counter('connections_opened_total', 'WebSocket connections opened.');
  readonly upgradesRefused = this.#counter('upgrades_refused_total', 'WebSocket upgrades refused, by reason.', ['reason']);
  readonly events = this.#counter('events_total', 'Client events received, by type (`malformed` for frames that did not decode).', ['type']);
  readonly #eventsByType = new Map<string, Counter.Internal>();
  readonly errors = this.#counter('errors_total', 'error events sent to clients, by error code.', ['code']);
  readonly sessionsCreated = this.#counter('sessions_created_total', 'Sessions created (conversation_start).');
  readonly sessionsResumed = this.#counter('sessions_resumed_total', 'session_resume answered with session_restored.');
  readonly recordingsFinished = this.#counter('recordings_finished_total', 'Recordings ended into a stored message (message_recorded).');
  readonly audioBytes = this.#counter('stt_audio_bytes_total', 'Audio bytes accepted into recordings, as sent (32,000 bytes are one second of 16 kHz PCM16).');
  readonly audioSeconds = this.#counter('stt_audio_seconds_total', 'Seconds of audio passed to the recognisers, each recording at its own sample rate.');
  readonly sttDecodeSeconds = this.#counter('stt_decode_seconds_total', 'Time Vosk worker threads spent decoding (busy time measured on each worker, carried with its results).');
  readonly sttWorkersStarted = this.#counter('stt_workers_started_total', 'Vosk worker threads that began serving (at start-up, and each replacement).');
  readonly sttWorkersLost = this.#counter('stt_workers_lost_total', 'Vosk worker threads lost (crash or exit); their streams failed with STT_SERVICE_ERROR and the thread was replaced.');
  readonly finalTextLatency = this.#histogram(
    'stt_final_text_latency_seconds',
    'From the end of a recording (message_end) to its message_recorded: the final-text latency a speaker waits.',
    LATENCY_BUCKETS_SECONDS,
  );
  readonly llmRequests = this.#counter('llm_requests_total', 'LLM requests finished, by kind (generate, predict) and outcome (ok, error, superseded).', ['kind', 'outcome']);
  readonly llmTimeToFirstToken = this.#histogram('llm_time_to_first_token_seconds', 'From the start of a suggestion generation to its first streamed text.', LATENCY_BUCKETS_SECONDS);
  readonly llmGeneration = this.#histogram('llm_generation_seconds', 'From the start of a suggestion generation to its llm_response (successful ones).', GENERATION_BUCKETS_SECONDS);
  readonly llmTokens = this.#counter('llm_tokens_total', 'Tokens the LLM provider reported for completed requests, by kind (prompt, completion).', ['kind']);
  readonly storeWrite = this.#histogram('store_write_seconds', 'Duration of one session store write (a committed transaction), any operation.', STORE_BUCKETS_SECONDS);
  readonly quotaRefusals = this.#counter('quota_refusals_total', 'Work refused by a per-owner or per-address quota, by quota.', ['quota']);
  readonly storeWriteFailures = this.#counter('store_write_failures_total', 'Session store writes that failed (nothing was written).', ['operation']);

  /**
   * The events_total series of one event type, looked up once: counting every audio frame through
   * `events.inc({ type })` would build a label object and hash it per frame. The types are the protocol's
   * (plus `malformed` and `binary_audio`), so the map stays small.
   */
  eventsOfType(type: string): Counter.Internal {
    let series = this.#eventsByType.get(type);
    if (series === undefined) {
      series = this.events.labels({ type });
      this.#eventsByType.set(type, series);
    }
    return series;
  }

  /** Default Node.js process metrics (CPU, memory, event-loop lag, GC), prefixed voxgate_. */
  collectProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
  }

  /** Gauges whose value lives with another owner, read when scraped. */
  bindSources(sources: MetricSources): void {
    this.#gauge('connections', 'Open WebSocket connections.', [], (set) => set({}, sources.connections()));
    this.#gauge('sessions', 'Sessions held in memory: `live` (a connection is attached) and `detached` (none is, a recording is still open).', ['state'], (set) => {
      const { live, detached } = sources.sessions();
      set({ state: 'live' }, live);
      set({ state: 'detached' }, detached);
    });
    this.#gauge('stt_streams', 'Speech recognition streams open.', [], (set) => set({}, sources.stt().activeStreams));
    this.#gauge('stt_stream_limit', 'Streams admitted at most: capacity by measured cost, or the latency limit learned from late final texts (absent with the mock engine).', [], (set) => {
      const limit = sources.stt().streamLimit;
      if (limit !== null) set({}, limit);
    });
    this.#gauge('stt_queue_depth', 'Decode tasks (batches and /asr frame tasks) posted to the workers and not answered yet.', [], (set) => set({}, sources.stt().queueDepth));
    this.#gauge('stt_workers', 'Speech recognition worker threads.', [], (set) => set({}, sources.stt().workers));
    this.#gauge('llm_in_flight', 'LLM requests running upstream.', [], (set) => set({}, sources.llm().inFlight));
    this.#gauge('llm_queued', 'LLM requests waiting for an in-flight slot (LLM_MAX_IN_FLIGHT).', [], (set) => set({}, sources.llm().queued));
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  #counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name: METRIC_PREFIX + name, help, labelNames, registers: [this.registry] });
  }

  #histogram<L extends string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []): Histogram<L> {
    return new Histogram({ name: METRIC_PREFIX + name, help, buckets, labelNames, registers: [this.registry] });
  }

  #gauge<L extends string>(name: string, help: string, labelNames: readonly L[], read: (set: (labels: Partial<Record<L, string>>, value: number) => void) => void): void {
    new Gauge<L>({
      name: METRIC_PREFIX + name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        read((labels, value) => this.set(labels as never, value));
      },
    });
  }
}
