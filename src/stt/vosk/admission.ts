// Speech admission: who gets a recogniser. Everything that decides admit or refuse is in this file.
//
// Guarantee: a stream is admitted only if a running worker has a free handle and, with the stream, that
// worker's predicted decode load (the cost weights of its streams times its cost per audio-second) stays
// within `maxUtilisation` of a core, and fewer streams are open than the latency limit; the stream goes
// to such a worker with the fewest streams. Streams are counted in default-rate streams (cost weights: a
// 48 kHz stream is 3), so the limit and the capacity share one unit whatever the rates.
//
// * Cost per audio-second: seeded by the start-up calibration (calibrate.ts: many recognisers through
//   the real decoder), then what the workers measure (load-meter.ts: wall time on their threads,
//   final texts included, so the main thread and other processes competing for the cores make it
//   dearer). Every worker is predicted with the mean of the workers' measurements: they are identical
//   threads decoding the same model on the same cores, and their own figures differed by 70 % within
//   one run (which streams each held, what ran beside it), so one worker filled while the other idled.
// * Latency limit: additive-increase / multiplicative-decrease on the time from finish() to the final
//   text (the adaptive concurrency limits of Netflix's concurrency-limits and Envoy). It starts at the
//   capacity the cost model computes, so a fresh server's first burst is bounded. A second in which over
//   5 % of ten or more final texts missed `targetFinishLatencyMs` sets it to 90 % of the streams open
//   then; a second served on time with the limit itself in use (98 % of it open) raises it by 2 %, but
//   not back to the level that was late until `HOLD_MS` passed without a late second, so a steady
//   overload settles just below that level instead of probing it every few seconds. Only streams
//   admitted since the last decrease count: one late burst lowers the limit once, not once per second
//   of its finishes.

/** What admission reads of a worker slot (worker-slot.ts implements it). */
export interface AdmissionWorker {
  readonly index: number;
  /** null while the slot has no running thread. */
  readonly threadId: number | null;
  readonly freeHandles: number;
  /** Streams holding a handle. */
  readonly usedHandles: number;
  /** Sum of the cost weights of its streams (1 = a stream at the engine's default rate). */
  readonly admittedWeight: number;
  /** Worker seconds per second of default-rate audio; 0 = unknown (then only handles bound it). */
  readonly costPerAudioSecond: number;
  /** False while costPerAudioSecond is still the start-up seed. */
  readonly isCostMeasured: boolean;
}

export interface AdmissionOptions {
  /** Share of one core a worker's predicted decode load may reach (0..1]. */
  maxUtilisation: number;
  /** Time from finish() to the final text that more than 5 % of a second's finishes may not exceed (ms). */
  targetFinishLatencyMs: number;
  /** The latency limit changed (for the log). */
  onLimitChange?(change: LimitChange, direction: 'decrease' | 'increase'): void;
}

export interface LimitChange {
  limit: number;
  /** Most streams open (default-rate streams) while the window's final texts were measured. */
  openStreams: number;
  /** Final texts in the window, and how many missed the target. */
  finishes: number;
  slow: number;
}

/** Why a stream would be refused now (`details` of STT_SERVICE_BUSY, and /api/health's reason). */
export type RefusalReason = 'no-worker' | 'capacity' | 'latency-limit';

/** Sums of weights (1/3 + 1/3 + 1/3) must not refuse by a rounding error. */
const EPSILON = 1e-9;
const WINDOW_MS = 1000;
const MIN_FINISHES = 10;
/** A window still short of MIN_FINISHES after this long is dropped: its few final texts are old news. */
const MAX_WINDOW_MS = 10_000;
const SLOW_SHARE = 0.05;
const DECREASE = 0.9;
const INCREASE = 0.02;
/** A window raises the limit only if it served at least this share of it: the limit was tested. */
const TESTED_SHARE = 0.98;
/** After a late window, the limit stays below the level that was late for this long (ms). */
const HOLD_MS = 30_000;

export class Admission<W extends AdmissionWorker> {
  readonly #workers: readonly W[];
  readonly #options: AdmissionOptions;
  /** The limit learned from late final texts; null until the first late window (then: the capacity). */
  #learned: number | null = null;
  #lastDecrease: LimitChange | null = null;
  /** Clock time of the last decrease: streams admitted before it say nothing about the new limit. */
  #lastDecreaseAt = Number.NEGATIVE_INFINITY;
  /** Streams open in the last late window: the limit stays below it until HOLD_MS after that window. */
  #lateLevel = Number.POSITIVE_INFINITY;
  #windowStart = 0;
  #finishes = 0;
  #slow = 0;
  #maxOpen = 0;

  constructor(workers: readonly W[], options: AdmissionOptions) {
    this.#workers = workers;
    this.#options = options;
  }

  /** The worker with the fewest streams that can take one of `costWeight` now, or null (see refusal()). */
  choose(costWeight: number, now: number): W | null {
    if (this.#openWeight() + costWeight > this.limitAt(now) + EPSILON) return null;
    let best: W | null = null;
    for (const worker of this.#workers) {
      if (!this.#fits(worker, costWeight)) continue;
      // Fewest streams first: the workers are identical threads, and a worker that has not measured its
      // cost yet still carries the start-up seed, so ordering by predicted load piled a burst onto the
      // one that had measured (measured: 14 + 9 streams, the 14 late).
      if (best === null || worker.admittedWeight < best.admittedWeight) best = worker;
    }
    return best;
  }

  /** Would a default-rate stream be admitted now? (Cheap: for a 503 before a WebSocket upgrade.) */
  canAdmit(now: number, costWeight = 1): boolean {
    return this.choose(costWeight, now) !== null;
  }

  /** Default-rate streams the running workers hold by the cost model (handles included). */
  capacity(): number {
    let total = 0;
    for (const worker of this.#workers) {
      if (worker.threadId === null) continue;
      const handles = worker.usedHandles + worker.freeHandles;
      const cost = this.#costOf(worker);
      const byCost = cost > 0 ? Math.floor(this.#options.maxUtilisation / cost + EPSILON) : handles;
      total += Math.min(handles, byCost);
    }
    return total;
  }

  /** Streams admitted at most as of `now`: the learned limit, and never more than the capacity. */
  limitAt(now: number): number {
    this.#closeWindowIfDue(now);
    const capacity = Math.max(this.#floor(), this.capacity());
    return this.#learned === null ? capacity : Math.min(this.#learned, capacity);
  }

  /**
   * A stream admitted at `openedAt` got its final text `latencyMs` after finish() (call it while the
   * stream still holds its handle).
   */
  recordFinal(latencyMs: number, openedAt: number, now: number): void {
    this.#closeWindowIfDue(now);
    if (openedAt < this.#lastDecreaseAt) return;
    if (this.#finishes === 0) this.#windowStart = now;
    this.#finishes += 1;
    if (latencyMs > this.#options.targetFinishLatencyMs) this.#slow += 1;
    const open = this.#openWeight();
    if (open > this.#maxOpen) this.#maxOpen = open;
  }

  /** Why a default-rate stream would be refused now, or null if it would be admitted. */
  refusal(now: number, costWeight = 1): { reason: RefusalReason; details: string } | null {
    if (this.choose(costWeight, now) !== null) return null;
    const workers = this.#workers
      .map((w) => (w.threadId === null ? `worker ${w.index}: restarting` : `worker ${w.index}: ${w.usedHandles} streams, predicted load ${this.#load(w).toFixed(2)} (cost ${this.#costOf(w).toFixed(4)} s per audio-s, its own ${w.isCostMeasured ? w.costPerAudioSecond.toFixed(4) : 'not measured yet'})`))
      .join('; ');
    const limit = this.limitAt(now);
    const open = Number(this.#openWeight().toFixed(2));
    if (this.#workers.every((w) => w.threadId === null)) return { reason: 'no-worker', details: `no-worker: ${workers}` };
    if (open + costWeight > limit + EPSILON && this.#learned !== null && this.#learned < this.capacity()) {
      const d = this.#lastDecrease;
      const why = d === null ? '' : ` (over ${this.#options.targetFinishLatencyMs} ms for ${d.slow} of ${d.finishes} final texts with ${d.openStreams} streams open)`;
      return { reason: 'latency-limit', details: `latency-limit: limit ${limit} streams${why}; ${workers}` };
    }
    return { reason: 'capacity', details: `capacity: ${open} of ${limit} streams, max utilisation ${this.#options.maxUtilisation}; ${workers}` };
  }

  /** The last decrease of the latency limit, for diagnostics. */
  get lastDecrease(): LimitChange | null {
    return this.#lastDecrease;
  }

  #fits(worker: W, costWeight: number): boolean {
    if (worker.threadId === null || worker.freeHandles === 0) return false;
    return (worker.admittedWeight + costWeight) * this.#costOf(worker) <= this.#options.maxUtilisation + EPSILON;
  }

  /** Predicted load of a worker (share of a core). */
  #load(worker: W): number {
    return worker.admittedWeight * this.#costOf(worker);
  }

  /** The mean cost the running workers measured; a worker's own seed while none has. */
  #costOf(worker: W): number {
    let sum = 0;
    let measured = 0;
    for (const other of this.#workers) {
      if (other.threadId === null || !other.isCostMeasured) continue;
      sum += other.costPerAudioSecond;
      measured += 1;
    }
    return measured > 0 ? sum / measured : worker.costPerAudioSecond;
  }

  /** Open streams in default-rate streams (the sum of their cost weights). */
  #openWeight(): number {
    let open = 0;
    for (const worker of this.#workers) open += worker.admittedWeight;
    return open;
  }

  /** One stream per worker is always allowed: a limit of 0 could never learn again. */
  #floor(): number {
    return Math.max(1, this.#workers.length);
  }

  // Finishes come in bursts (many recordings end together), so a window is judged when it is due, not
  // only when the next finish arrives, which could be after the next burst of admissions. A window with
  // too few final texts stays open (30 bench-model streams end about five a second), up to a limit.
  #closeWindowIfDue(now: number): void {
    if (this.#finishes === 0 || now - this.#windowStart < WINDOW_MS) return;
    if (this.#finishes < MIN_FINISHES && now - this.#windowStart < MAX_WINDOW_MS) return;
    if (this.#finishes >= MIN_FINISHES) this.#judge(now);
    this.#finishes = 0;
    this.#slow = 0;
    this.#maxOpen = 0;
  }

  #judge(now: number): void {
    const window = { openStreams: this.#maxOpen, finishes: this.#finishes, slow: this.#slow };
    const current = this.#learned ?? Math.max(this.#floor(), this.capacity());
    if (this.#slow > this.#finishes * SLOW_SHARE) {
      this.#lateLevel = this.#maxOpen;
      this.#lastDecreaseAt = now;
      const limit = Math.max(this.#floor(), Math.min(current, Math.floor(this.#maxOpen * DECREASE)));
      if (limit === this.#learned) return;
      this.#learned = limit;
      this.#lastDecrease = { limit, ...window };
      this.#options.onLimitChange?.(this.#lastDecrease, 'decrease');
      return;
    }
    // Only a window that served the limit itself says it can be raised: one that served 90 % of it
    // raised it past the level that had failed within three good seconds (measured on the old design).
    if (this.#slow === 0 && this.#learned !== null && this.#maxOpen >= this.#learned * TESTED_SHARE) {
      const isHeld = now - this.#lastDecreaseAt < HOLD_MS;
      const ceiling = isHeld ? Math.max(this.#floor(), Math.ceil(this.#lateLevel) - 1) : Number.POSITIVE_INFINITY;
      const limit = Math.min(ceiling, this.#learned + Math.max(1, Math.round(this.#learned * INCREASE)));
      if (limit <= this.#learned) return;
      this.#learned = limit;
      this.#options.onLimitChange?.({ limit, ...window }, 'increase');
    }
  }
}
