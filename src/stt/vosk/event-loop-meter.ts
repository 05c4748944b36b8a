// The main thread's share of the work. Every stream's audio, partials and finals pass through the main
// thread, so admission must know what one stream costs there too, not only in its worker: with tiny
// models the main thread, not decoding, is the limit. (In-process mode decodes on the main thread, so
// this is its whole load.)
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';

const WINDOW_MS = 1000;
const RESOLUTION_MS = 10;
const MIN_AUDIO_MS_PER_WINDOW = 10 * WINDOW_MS;
const RECENT_WINDOWS = 8;

export interface EventLoopMeterOptions {
  /** Bytes of PCM per millisecond of audio. */
  bytesPerMs: number;
  /** Audio bytes the streams have written so far (a running total). */
  audioBytesWritten(): number;
}

export class EventLoopMeter {
  readonly #options: EventLoopMeterOptions;
  readonly #histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  readonly #timer: NodeJS.Timeout;
  #lastP99Ms = 0;
  #previousP99Ms = 0;
  #lastElu: EventLoopUtilization = performance.eventLoopUtilization();
  #lastAudioBytes = 0;
  readonly #recentCosts = new Float64Array(RECENT_WINDOWS);
  #recentCount = 0;
  /** Main-thread busy time per second of audio received (least of the recent windows); 0 until measured. */
  costPerAudioSecond = 0;

  constructor(options: EventLoopMeterOptions) {
    this.#options = options;
    this.#histogram.enable();
    this.#timer = setInterval(() => this.#closeWindow(), WINDOW_MS);
    this.#timer.unref();
  }

  /**
   * The p99 event-loop delay over the last two seconds, as the smaller of the two one-second windows (ms):
   * overload persists, while one long synchronous stretch (start-up, a GC) shows in one window only.
   */
  get sustainedP99Ms(): number {
    return Math.min(this.#lastP99Ms, this.#previousP99Ms);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }

  #closeWindow(): void {
    // The histogram counts delay on top of the sampling resolution, in nanoseconds.
    this.#previousP99Ms = this.#lastP99Ms;
    this.#lastP99Ms = Math.max(0, this.#histogram.percentile(99) / 1e6 - RESOLUTION_MS);
    this.#histogram.reset();
    const elu = performance.eventLoopUtilization();
    const activeMs = elu.active - this.#lastElu.active;
    this.#lastElu = elu;
    const audioBytes = this.#options.audioBytesWritten();
    const audioMs = (audioBytes - this.#lastAudioBytes) / this.#options.bytesPerMs;
    this.#lastAudioBytes = audioBytes;
    // With few streams, fixed costs (timers, health probes, the LLM) would dominate the per-stream figure:
    // it is only measured while at least ten seconds of audio arrive per second.
    if (audioMs < MIN_AUDIO_MS_PER_WINDOW) return;
    // Connection bursts (handshakes, conversation starts) inflate a window's figure for a moment; the
    // smallest of the recent windows is the steady cost of a stream.
    this.#recentCosts[this.#recentCount++ % RECENT_WINDOWS] = activeMs / audioMs;
    let cost = Number.POSITIVE_INFINITY;
    for (let i = 0; i < Math.min(this.#recentCount, RECENT_WINDOWS); i++) cost = Math.min(cost, this.#recentCosts[i]!);
    this.costPerAudioSecond = cost;
  }
}
