// Measures how loaded one worker slot is, from the batches it runs: decode time per second of wall
// time (utilisation), decode time per second of audio (cost of one real-time stream), and the age of
// the oldest batch still running (lag). Admission control reads these; nothing here allocates per batch.
import { performance } from 'node:perf_hooks';

export interface LoadMeterOptions {
  /** Length of one measuring window (ms); figures are smoothed over windows. */
  windowMs: number;
  /** Bytes of PCM per millisecond of audio (2 * sampleRate / 1000). */
  bytesPerMs: number;
}

const SMOOTHING = 0.5;

export class LoadMeter {
  /** Smoothed decode time per wall time at the last completed window; read utilisationAt() instead. */
  utilisation = 0;
  /** Decode time of every batch so far (ms, a running total). */
  busyMsTotal = 0;
  /**
   * Steady decode time per audio time, smoothed over samples of at least a second of wall time and of
   * audio; the seeded cost until then, 0 without one.
   */
  costPerAudioSecond = 0;
  readonly #windowMs: number;
  readonly #bytesPerMs: number;
  #windowStart: number;
  #windowBusyMs = 0;
  #costStart: number;
  #costBusyMs = 0;
  #costAudioBytes = 0;
  #isCostMeasured = false;
  #seedCost = 0;

  /** `now` starts the first window (performance.now() time base). */
  constructor(options: LoadMeterOptions, now = performance.now()) {
    this.#windowMs = options.windowMs;
    this.#bytesPerMs = options.bytesPerMs;
    this.#windowStart = now;
    this.#costStart = now;
  }

  /**
   * One batch finished: it was busy for `busyMs`, `steadyBusyMs` of which decoding `steadyAudioBytes` of
   * recognisers past their warm-up (DecodeResult says why only those measure the cost).
   */
  record(busyMs: number, steadyBusyMs: number, steadyAudioBytes: number, now: number): void {
    this.busyMsTotal += busyMs;
    this.#windowBusyMs += busyMs;
    this.#costBusyMs += steadyBusyMs;
    this.#costAudioBytes += steadyAudioBytes;
    // A sample spans at least a second of audio and a second of wall time, so that one sample covers
    // every stream of the worker, not the few whose audio happened to come first.
    const audioMs = this.#costAudioBytes / this.#bytesPerMs;
    if (audioMs >= 1000 && now - this.#costStart >= this.#windowMs) {
      const cost = this.#costBusyMs / audioMs;
      this.costPerAudioSecond = this.#isCostMeasured ? this.costPerAudioSecond * (1 - SMOOTHING) + cost * SMOOTHING : cost;
      this.#isCostMeasured = true;
      this.#costStart = now;
      this.#costBusyMs = 0;
      this.#costAudioBytes = 0;
    }
    const elapsed = now - this.#windowStart;
    if (elapsed < this.#windowMs) return;
    this.utilisation = this.utilisation * (1 - SMOOTHING) + (this.#windowBusyMs / elapsed) * SMOOTHING;
    this.#windowStart = now;
    this.#windowBusyMs = 0;
  }

  /**
   * Utilisation as of `now`. Windows only close when a batch finishes, so a worker that went quiet after
   * being saturated would otherwise look saturated forever: the open window counts its idle time too.
   */
  utilisationAt(now: number): number {
    const elapsed = now - this.#windowStart;
    if (elapsed < this.#windowMs) return this.utilisation;
    return this.utilisation * (1 - SMOOTHING) + (this.#windowBusyMs / elapsed) * SMOOTHING;
  }

  /** Starts from a cost measured elsewhere (start-up calibration), so admission is not blind at first. */
  seedCost(costPerAudioSecond: number): void {
    this.#seedCost = costPerAudioSecond;
    if (this.costPerAudioSecond === 0) this.costPerAudioSecond = costPerAudioSecond;
  }

  /** Forgets the measurements (the slot's thread was replaced), back to the seeded cost. */
  reset(now = performance.now()): void {
    this.utilisation = 0;
    this.costPerAudioSecond = this.#seedCost;
    this.#windowStart = now;
    this.#windowBusyMs = 0;
    this.#costStart = now;
    this.#costBusyMs = 0;
    this.#costAudioBytes = 0;
    this.#isCostMeasured = false;
  }
}
