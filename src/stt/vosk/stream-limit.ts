// Learns how many streams this machine serves with their final text in time. Admission's cost model
// (decode and main-thread time per second of audio) predicts steady load, but not what many streams
// ending together cost, nor CPU taken by other processes on the machine: with tiny models latency
// failed while a third of the machine's CPU time was idle. So every finish reports how long its final text
// took and how many streams were open. A window in which more than 5 % of finishes missed the target
// lowers the limit below the streams open then (multiplicative decrease); a window served well close
// to the limit raises it a little (additive increase): the adaptive concurrency limits of Netflix's
// concurrency-limits and Envoy, with message_end's latency as the signal.
export interface StreamLimitOptions {
  /** Time from finish() to the final text a stream should get (ms). */
  targetMs: number;
  /** The limit never goes below this (streams). */
  floor: number;
  /** Length of one judging window (ms). Default 1000. */
  windowMs?: number;
  /** Finishes a window needs before it is judged. Default 10. */
  minSamples?: number;
  /** The limit changed (for the log). */
  onChange?(change: StreamLimitChange, direction: 'decrease' | 'increase'): void;
}

const DECREASE = 0.9;
const INCREASE = 0.02;
/** A window raises the limit only if it served at least this share of it: the limit was tested. */
const TESTED_SHARE = 0.98;
const SLOW_SHARE = 0.05;

export interface StreamLimitChange {
  limit: number;
  /** Streams open while the window's finishes were measured (the most seen). */
  openStreams: number;
  /** Finishes in the window, and how many of them missed the target. */
  finishes: number;
  slow: number;
}

export class AdaptiveStreamLimit {
  /** Streams to admit at most as of the last judged window; read limitAt() instead. */
  limit = Number.POSITIVE_INFINITY;
  /** The last decrease, for the busy reason. */
  lastDecrease: StreamLimitChange | null = null;
  readonly #targetMs: number;
  readonly #floor: number;
  readonly #windowMs: number;
  readonly #minSamples: number;
  readonly #onChange: StreamLimitOptions['onChange'];
  /** When the window's first finish came. */
  #windowStart = 0;
  #finishes = 0;
  #slow = 0;
  #maxOpen = 0;

  constructor(options: StreamLimitOptions) {
    this.#targetMs = options.targetMs;
    this.#floor = Math.max(1, options.floor);
    this.#windowMs = options.windowMs ?? 1000;
    this.#minSamples = options.minSamples ?? 10;
    this.#onChange = options.onChange;
  }

  /**
   * A stream got its final text `latencyMs` after finish() while `openStreams` streams were open
   * (itself included).
   */
  record(latencyMs: number, openStreams: number, now: number): void {
    this.#closeWindowIfDue(now);
    if (this.#finishes === 0) this.#windowStart = now;
    this.#finishes += 1;
    if (latencyMs > this.#targetMs) this.#slow += 1;
    if (openStreams > this.#maxOpen) this.#maxOpen = openStreams;
  }

  /**
   * The limit as of `now`. Finishes come in bursts (many recordings end together), so a window is
   * judged when it is due, not only when the next finish arrives, which could be after the next burst
   * of admissions.
   */
  limitAt(now: number): number {
    this.#closeWindowIfDue(now);
    return this.limit;
  }

  #closeWindowIfDue(now: number): void {
    if (this.#finishes === 0 || now - this.#windowStart < this.#windowMs) return;
    this.#judgeWindow();
    this.#finishes = 0;
    this.#slow = 0;
    this.#maxOpen = 0;
  }

  #judgeWindow(): void {
    if (this.#finishes < this.#minSamples) return;
    const window = { openStreams: this.#maxOpen, finishes: this.#finishes, slow: this.#slow };
    if (this.#slow > this.#finishes * SLOW_SHARE) {
      const limit = Math.max(this.#floor, Math.min(this.limit, Math.floor(this.#maxOpen * DECREASE)));
      if (limit === this.limit) return;
      this.limit = limit;
      this.lastDecrease = { limit, ...window };
      this.#onChange?.(this.lastDecrease, 'decrease');
      return;
    }
    // Only a window that served the limit itself says it can be raised: one that served 90 % of it
    // raised it past the level that had failed within three good seconds (measured: 537 -> 622 where
    // 597 had been late, and the next burst's final texts were late again).
    if (this.#slow === 0 && Number.isFinite(this.limit) && this.#maxOpen >= this.limit * TESTED_SHARE) {
      this.limit += Math.max(1, Math.round(this.limit * INCREASE));
      this.#onChange?.({ limit: this.limit, ...window }, 'increase');
    }
  }
}
