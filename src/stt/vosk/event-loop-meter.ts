// How late the main thread runs its callbacks. Every stream's audio, partials and finals pass through the
// main thread, so when it falls behind, new recordings would only make every admitted one slower: the
// engine refuses them instead. (In-process mode decodes on the main thread, so this is its load gauge.)
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

const WINDOW_MS = 1000;
const RESOLUTION_MS = 10;

export class EventLoopMeter {
  readonly #histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  readonly #timer: NodeJS.Timeout;
  /** p99 delay of the last two completed windows (ms). */
  #lastP99Ms = 0;
  #previousP99Ms = 0;

  constructor() {
    this.#histogram.enable();
    this.#timer = setInterval(() => {
      // The histogram counts delay on top of the sampling resolution, in nanoseconds.
      this.#previousP99Ms = this.#lastP99Ms;
      this.#lastP99Ms = Math.max(0, this.#histogram.percentile(99) / 1e6 - RESOLUTION_MS);
      this.#histogram.reset();
    }, WINDOW_MS);
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
}
