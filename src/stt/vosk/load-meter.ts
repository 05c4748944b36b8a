// Measures how loaded one worker slot is, from the batches it runs: decode time per second of wall
// time (utilisation) and decode time per second of audio (cost of one real-time stream, its final text
// included). Admission control reads these; nothing here allocates per batch.
import { performance } from 'node:perf_hooks';

/** What one finished batch says about its cost (DecodeResult carries these fields). */
export interface BatchCost {
  /** Time the batch kept its thread busy (ms). */
  busyMs: number;
  /** Of it, decoding audio of recognisers past their warm-up, and those bytes (steady cost). */
  steadyBusyMs: number;
  steadyAudioBytes: number;
  /** Of it, final texts, and the audio bytes of the recordings they ended (cost per recording). */
  finalBusyMs: number;
  finalAudioBytes: number;
}

export interface LoadMeterOptions {
  /** Length of one measuring window (ms); figures are smoothed over windows. */
  windowMs: number;
  /** Bytes of PCM per millisecond of audio (2 * sampleRate / 1000). */
  bytesPerMs: number;
}

const SMOOTHING = 0.5;
/**
 * Finished audio (ms) a sample of the final-text cost spans: a few recordings, so that one long or
 * short recording does not swing it.
 */
const FINAL_SAMPLE_AUDIO_MS = 20_000;
/**
 * A cost sample counts only if the worker was busy at least this share of its wall time: a worker with
 * a core to itself measures libvosk alone, not what a stream costs when every thread wants a core (one
 * bench-model speaker measured 0.054 s per audio-s, 11 per worker 0.076: admitted on the first figure, 28
 * speakers answered at p99 497 ms).
 */
const MIN_SAMPLE_BUSY_SHARE = 0.5;
/**
 * The steady cost is the mean of this many recent samples: wall-time samples of one worker swing by a
 * third from second to second (tone model: 0.0027-0.0037 s per audio-s), and an average that gave the
 * latest sample half the weight let 678 tone-model speakers in where 492 fit (p99 624 ms). The dearest
 * sample (tried) refused bench-model speakers at 24 where 28 passed with p99 84 ms.
 */
const COST_SAMPLES = 8;

export class LoadMeter {
  /** Smoothed decode time per wall time at the last completed window; read utilisationAt() instead. */
  utilisation = 0;
  /** Decode time of every batch so far (ms, a running total). */
  busyMsTotal = 0;
  /**
   * Worker seconds per second of audio: the steady decode cost (the mean of the recent samples of at
   * least a second of wall time and of audio, taken while the worker was at least half busy) plus the
   * final texts' cost spread over the audio of their recordings; the seeded cost until the steady cost
   * is measured, 0 without one.
   */
  costPerAudioSecond = 0;
  readonly #windowMs: number;
  readonly #bytesPerMs: number;
  #windowStart: number;
  #windowBusyMs = 0;
  #costStart: number;
  #costBusyMs = 0;
  #costAudioBytes = 0;
  /** All busy time since #costStart (the sample's busy share). */
  #costWindowBusyMs = 0;
  /** The last COST_SAMPLES steady-cost samples (a ring); #sampleCount of them are filled. */
  readonly #samples = new Float64Array(COST_SAMPLES);
  #sampleCount = 0;
  #nextSample = 0;
  #finalBusyMs = 0;
  #finalAudioBytes = 0;
  /** Final-text time per second of the audio of the recordings they ended (smoothed); 0 until sampled. */
  #finalCost = 0;
  #isFinalCostMeasured = false;
  #seedCost = 0;

  /** `now` starts the first window (performance.now() time base). */
  constructor(options: LoadMeterOptions, now = performance.now()) {
    this.#windowMs = options.windowMs;
    this.#bytesPerMs = options.bytesPerMs;
    this.#windowStart = now;
    this.#costStart = now;
  }

  /** One batch finished (`now`: when its result arrived). */
  record(batch: BatchCost, now: number): void {
    this.busyMsTotal += batch.busyMs;
    this.#windowBusyMs += batch.busyMs;
    this.#costBusyMs += batch.steadyBusyMs;
    this.#costAudioBytes += batch.steadyAudioBytes;
    this.#costWindowBusyMs += batch.busyMs;
    this.#finalBusyMs += batch.finalBusyMs;
    this.#finalAudioBytes += batch.finalAudioBytes;
    // A sample spans at least a second of audio and a second of wall time, so that one sample covers
    // every stream of the worker, not the few whose audio happened to come first.
    const audioMs = this.#costAudioBytes / this.#bytesPerMs;
    const sampleMs = now - this.#costStart;
    if (audioMs >= 1000 && sampleMs >= this.#windowMs) {
      if (this.#costWindowBusyMs >= sampleMs * MIN_SAMPLE_BUSY_SHARE) {
        this.#samples[this.#nextSample] = this.#costBusyMs / audioMs;
        this.#nextSample = (this.#nextSample + 1) % COST_SAMPLES;
        this.#sampleCount = Math.min(COST_SAMPLES, this.#sampleCount + 1);
      }
      this.#costStart = now;
      this.#costBusyMs = 0;
      this.#costAudioBytes = 0;
      this.#costWindowBusyMs = 0;
    }
    // A final text costs per recording (with a large model, as much as a second of audio), so it is
    // spread over the audio of the recordings it ends: short recordings make a stream dearer.
    const finalAudioMs = this.#finalAudioBytes / this.#bytesPerMs;
    if (finalAudioMs >= FINAL_SAMPLE_AUDIO_MS) {
      const cost = this.#finalBusyMs / finalAudioMs;
      this.#finalCost = this.#isFinalCostMeasured ? this.#finalCost * (1 - SMOOTHING) + cost * SMOOTHING : cost;
      this.#isFinalCostMeasured = true;
      this.#finalBusyMs = 0;
      this.#finalAudioBytes = 0;
    }
    if (this.#sampleCount > 0) this.costPerAudioSecond = this.#steadyCost() + this.#finalCost;
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

  /** The mean of the recent steady-cost samples (0 before the first). */
  #steadyCost(): number {
    if (this.#sampleCount === 0) return 0;
    let sum = 0;
    for (let i = 0; i < this.#sampleCount; i++) sum += this.#samples[i]!;
    return sum / this.#sampleCount;
  }

  /** True once the worker measured its own steady cost (admission then predicts every worker with the measured mean). */
  get isCostMeasured(): boolean {
    return this.#sampleCount > 0;
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
    this.#costWindowBusyMs = 0;
    this.#sampleCount = 0;
    this.#nextSample = 0;
    this.#finalBusyMs = 0;
    this.#finalAudioBytes = 0;
    this.#finalCost = 0;
    this.#isFinalCostMeasured = false;
  }
}
