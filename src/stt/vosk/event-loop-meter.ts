// The main thread's share of the work. Every stream's audio, partials and finals pass through the main
// thread, so admission must know what one stream costs there too, not only in its worker (with the tone
// model about a tenth of a stream's cost, with real models under 3 %), and must stop when the loop
// itself falls behind. (In-process mode decodes on the main thread, so this is its whole load.)
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';

const WINDOW_MS = 1000;
const RESOLUTION_MS = 10;
const MIN_AUDIO_MS_PER_WINDOW = 10 * WINDOW_MS;
const RECENT_WINDOWS = 8;
/** Windows in which more than this share of the open streams was opened are not measured. */
const MAX_OPENED_SHARE = 0.1;

export interface EventLoopMeterOptions {
  /** Bytes of PCM per millisecond of audio. */
  bytesPerMs: number;
  /** Audio bytes the streams have written so far (a running total). */
  audioBytesWritten(): number;
  /** Streams opened so far (a running total). */
  streamsOpened(): number;
  /** Streams open now. */
  openStreams(): number;
  /** Decode time spent on the main thread so far (ms, a running total; 0 unless decoding in-process). */
  decodeMsOnMainThread(): number;
}

export class EventLoopMeter {
  readonly #options: EventLoopMeterOptions;
  readonly #histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  readonly #timer: NodeJS.Timeout;
  #lastP99Ms = 0;
  #previousP99Ms = 0;
  readonly #busyMs: () => number = mainThreadBusyClock();
  #lastBusyMs = this.#busyMs();
  #lastAudioBytes = 0;
  #lastStreamsOpened = 0;
  #lastDecodeMs = 0;
  readonly #recentCosts = new Float64Array(RECENT_WINDOWS);
  #recentCount = 0;
  /** Main-thread CPU time per second of audio received (least of the recent windows); 0 until measured. */
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
    const busyMs = this.#busyMs();
    const decodeMs = this.#options.decodeMsOnMainThread();
    // In-process decoding is the slot's cost, already counted per stream: the share is what remains.
    const activeMs = Math.max(0, busyMs - this.#lastBusyMs - (decodeMs - this.#lastDecodeMs));
    this.#lastBusyMs = busyMs;
    this.#lastDecodeMs = decodeMs;
    const audioBytes = this.#options.audioBytesWritten();
    const audioMs = (audioBytes - this.#lastAudioBytes) / this.#options.bytesPerMs;
    this.#lastAudioBytes = audioBytes;
    const streamsOpened = this.#options.streamsOpened();
    const opened = streamsOpened - this.#lastStreamsOpened;
    this.#lastStreamsOpened = streamsOpened;
    // With few streams, fixed costs (timers, health probes, the LLM) would dominate the per-stream figure:
    // it is only measured while at least ten seconds of audio arrive per second. A window in which many
    // streams started is not steady either: connection handshakes and conversation starts cost the main
    // thread more than the audio (measured: 0.0019 s per audio-s while 300 speakers connected, 0.0002
    // once they talked), and that burst is exactly when admission decides about many streams.
    if (audioMs < MIN_AUDIO_MS_PER_WINDOW || opened > this.#options.openStreams() * MAX_OPENED_SHARE) return;
    // What remains of such bursts still inflates a window for a moment; the smallest of the recent
    // windows is the steady cost of a stream.
    this.#recentCosts[this.#recentCount++ % RECENT_WINDOWS] = activeMs / audioMs;
    let cost = Number.POSITIVE_INFINITY;
    for (let i = 0; i < Math.min(this.#recentCount, RECENT_WINDOWS); i++) cost = Math.min(cost, this.#recentCosts[i]!);
    this.costPerAudioSecond = cost;
  }
}

/**
 * A running total of the main thread's busy time (ms). On Linux its CPU time from the scheduler
 * (/proc/thread-self/schedstat, nanoseconds). Event-loop utilisation is the fallback elsewhere: it counts
 * wall time outside the poll wait, which on a busy machine includes time the thread waited for a core
 * (measured here: 0.0022 s per audio-s with 500 streams where the thread used 0.0002).
 */
function mainThreadBusyClock(): () => number {
  const readSchedstat = (): number => Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ', 1)[0]) / 1e6;
  try {
    if (Number.isFinite(readSchedstat())) return readSchedstat;
  } catch {
    // Not Linux, or no schedstat: fall through.
  }
  return () => performance.eventLoopUtilization().active;
}
