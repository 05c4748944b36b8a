/**
 * Lets at most `linesPerInterval` log lines through per `intervalMs`, and counts the ones it holds back so
 * the next line written can say how many were skipped. Bad input can arrive once per frame: without this
 * a client decides how much the server logs.
 */
export class LogLimiter {
  readonly #intervalMs: number;
  readonly #linesPerInterval: number;
  #intervalStartedAt = -Infinity;
  #linesThisInterval = 0;
  #skipped = 0;

  constructor(options: { intervalMs: number; linesPerInterval: number }) {
    this.#intervalMs = options.intervalMs;
    this.#linesPerInterval = options.linesPerInterval;
  }

  /**
   * Asks to write one line. Returns null when the line must be skipped, otherwise how many lines were
   * skipped since the last one written (to put into it).
   */
  take(now: number = performance.now()): number | null {
    if (now - this.#intervalStartedAt >= this.#intervalMs) {
      this.#intervalStartedAt = now;
      this.#linesThisInterval = 0;
    }
    if (this.#linesThisInterval >= this.#linesPerInterval) {
      this.#skipped++;
      return null;
    }
    this.#linesThisInterval++;
    const skipped = this.#skipped;
    this.#skipped = 0;
    return skipped;
  }
}
