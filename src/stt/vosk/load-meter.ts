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
  /** Smoothed decode time per wall time, 0..1 (can pass 1 slightly: timers are not exact). */
  utilisation = 0;
  /** Smoothed decode time per audio time; 0 until something was measured. */
  costPerAudioSecond = 0;
  readonly #windowMs: number;
  readonly #bytesPerMs: number;
  #windowStart = performance.now();
  #windowBusyMs = 0;
  #costBusyMs = 0;
  #costAudioBytes = 0;

  constructor(options: LoadMeterOptions) {
    this.#windowMs = options.windowMs;
    this.#bytesPerMs = options.bytesPerMs;
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

  /** Forgets the measurements (the slot's thread was replaced). */
  reset(): void {
    this.utilisation = 0;
    this.costPerAudioSecond = 0;
    this.#windowStart = performance.now();
    this.#windowBusyMs = 0;
    this.#costBusyMs = 0;
    this.#costAudioBytes = 0;
  }
}
