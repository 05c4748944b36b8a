/**
 * At most one log line per interval for one kind of repeated event (bad input a client keeps sending):
 * the first line is written, later ones within the interval are counted, and the next written line says
 * how many were left out. One instance per kind of line; it holds two numbers, whatever the traffic.
 */
export class LogThrottle {
  readonly #intervalMs: number;
  #lastWrittenAtMs = Number.NEGATIVE_INFINITY;
  #suppressed = 0;

  constructor(options: { intervalMs: number }) {
    this.#intervalMs = options.intervalMs;
  }

  /**
   * Whether to write the line now; when true, `suppressed` is how many were left out since the last one
   * (put it in the line).
   */
  take(nowMs: number = Date.now()): { write: boolean; suppressed: number } {
    if (nowMs - this.#lastWrittenAtMs < this.#intervalMs) {
      this.#suppressed++;
      return { write: false, suppressed: 0 };
    }
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#lastWrittenAtMs = nowMs;
    return { write: true, suppressed };
  }
}
