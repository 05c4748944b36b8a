// Measures how loaded one worker slot is, from the batches it runs: decode CPU time per second of wall
// time (utilisation), decode CPU time per second of audio (cost of one real-time stream), and the age of
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
  /** Smoothed decode time per audio time; 0 until something was measured. */
  costPerAudioSecond = 0;
  readonly #windowMs: number;
  readonly #bytesPerMs: number;
  #windowStart: number;
  #windowBusyMs = 0;
  #costBusyMs = 0;
  #costAudioBytes = 0;
  #seedCost = 0;

  /** `now` starts the first window (performance.now() time base). */
  constructor(options: LoadMeterOptions, now = performance.now()) {
    this.#windowMs = options.windowMs;
    this.#bytesPerMs = options.bytesPerMs;
    this.#windowStart = now;
  }

  /** One batch finished: it spent `busyMs` decoding `audioBytes`. */
  record(busyMs: number, audioBytes: number, now: number): void {
    this.#windowBusyMs += busyMs;
    this.#costBusyMs += busyMs;
    this.#costAudioBytes += audioBytes;
    // Cost per audio second is measured per second of audio decoded (however fast that happened), so
    // it is known after the first second of speech; fewer bytes say more about per-batch overhead.
    const audioMs = this.#costAudioBytes / this.#bytesPerMs;
    if (audioMs >= 1000) {
      const cost = this.#costBusyMs / audioMs;
      this.costPerAudioSecond = this.costPerAudioSecond === 0 ? cost : this.costPerAudioSecond * (1 - SMOOTHING) + cost * SMOOTHING;
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
  reset(): void {
    this.utilisation = 0;
    this.costPerAudioSecond = this.#seedCost;
    this.#windowStart = performance.now();
    this.#windowBusyMs = 0;
    this.#costBusyMs = 0;
    this.#costAudioBytes = 0;
  }
}
