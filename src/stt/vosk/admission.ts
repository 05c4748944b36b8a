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
//   capacity the cost model computes, so a fresh server's first burst is bounded. It is judged every
//   40 final texts: more than 5 % of them later than `targetFinishLatencyMs` (or more than a quarter of
//   ten) sets it to 90 % of the most streams open in the last 2 s; none late, with the limit itself in use
//   (98 % of it open), raises it by 2 %; one or two late keep it. Only streams admitted since the last
//   decrease count, so one late burst lowers it once.

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
  /** Time from finish() to the final text that more than 5 % of 40 final texts may not exceed (ms). */
  targetFinishLatencyMs: number;
  /** The latency limit changed (for the log). */
  onLimitChange?(change: LimitChange, direction: 'decrease' | 'increase'): void;
}

export interface LimitChange {
  limit: number;
  /** Most streams open (default-rate streams) while the judged final texts came. */
  openStreams: number;
  /** Final texts judged, and how many missed the target. */
  finishes: number;
  slow: number;
}

/** Why a stream would be refused now (`details` of STT_SERVICE_BUSY, and /api/health's reason). */
export type RefusalReason = 'no-worker' | 'capacity' | 'latency-limit';

/** Sums of weights (1/3 + 1/3 + 1/3) must not refuse by a rounding error. */
const EPSILON = 1e-9;
/**
 * Final texts per judgment: with one late text in ten counting as over 5 %, single late texts (a pause
 * of the machine, three recordings ending together on one worker) cut the limit from 28 to 16 bench-model
 * streams within a minute of a steady overload (2026-12-02 06:45 UTC soak).
 */
const EVIDENCE = 40;
/** A clear overload is judged sooner: this many final texts with more than FAST_SLOW_SHARE late. */
const FAST_EVIDENCE = 10;
const FAST_SLOW_SHARE = 0.25;
const SLOW_SHARE = 0.05;
const DECREASE = 0.9;
const INCREASE = 0.02;
/**
 * The most streams open is remembered this long (ms), across judgments: the late final texts of a burst
 * come when most of its streams have ended (judged on the streams open then, 570 tone-model speakers
 * ending together cut the limit to 117).
 */
const OPEN_MEMORY_MS = 2000;
/** A judgment raises the limit only if at least this share of it was open: the limit was tested. */
const TESTED_SHARE = 0.98;

export class Admission<W extends AdmissionWorker> {
  readonly #workers: readonly W[];
  readonly #options: AdmissionOptions;
  /** The limit learned from late final texts; null until the first late window (then: the capacity). */
  #learned: number | null = null;
  #lastDecrease: LimitChange | null = null;
  /** Clock time of the last decrease: streams admitted before it say nothing about the new limit. */
  #lastDecreaseAt = Number.NEGATIVE_INFINITY;
  /** Final texts since the last judgment, how many were late, and the most streams open meanwhile. */
  #finishes = 0;
  #slow = 0;
  #maxOpen = 0;
  /** When #maxOpen was reached: it stands for OPEN_MEMORY_MS, across judgments. */
  #maxOpenAt = Number.NEGATIVE_INFINITY;

  constructor(workers: readonly W[], options: AdmissionOptions) {
    this.#workers = workers;
    this.#options = options;
  }

  /** The worker with the fewest streams that can take one of `costWeight` now, or null (see refusal()). */
  choose(costWeight: number): W | null {
    if (this.#openWeight() + costWeight > this.limit() + EPSILON) return null;
    const measuredCost = this.#measuredCost();
    let best: W | null = null;
    for (const worker of this.#workers) {
      if (!this.#fits(worker, costWeight, this.#costOf(worker, measuredCost))) continue;
      // Fewest streams first: the workers are identical threads (ordering by each one's own predicted
      // load once piled a burst onto the one that had measured its cost: 14 + 9 streams, the 14 late).
      if (best === null || worker.admittedWeight < best.admittedWeight) best = worker;
    }
    return best;
  }

  /** Would a default-rate stream be admitted now? (Cheap: for a 503 before a WebSocket upgrade.) */
  canAdmit(costWeight = 1): boolean {
    return this.choose(costWeight) !== null;
  }

  /** Default-rate streams the running workers hold by the cost model (handles included). */
  capacity(): number {
    const measuredCost = this.#measuredCost();
    let total = 0;
    for (const worker of this.#workers) {
      if (worker.threadId === null) continue;
      const handles = worker.usedHandles + worker.freeHandles;
      const cost = this.#costOf(worker, measuredCost);
      const byCost = cost > 0 ? Math.floor(this.#options.maxUtilisation / cost + EPSILON) : handles;
      total += Math.min(handles, byCost);
    }
    return total;
  }

  /** Streams admitted at most: the learned limit, and never more than the capacity. */
  limit(): number {
    const capacity = Math.max(this.#floor(), this.capacity());
    return this.#learned === null ? capacity : Math.min(this.#learned, capacity);
  }

  /**
   * A stream admitted at `openedAt` got its final text `latencyMs` after finish() (call it while the
   * stream still holds its handle).
   */
  recordFinal(latencyMs: number, openedAt: number, now: number): void {
    if (openedAt < this.#lastDecreaseAt) return;
    this.#finishes += 1;
    if (latencyMs > this.#options.targetFinishLatencyMs) this.#slow += 1;
    const open = this.#openWeight();
    if (open >= this.#maxOpen || now - this.#maxOpenAt > OPEN_MEMORY_MS) {
      this.#maxOpen = open;
      this.#maxOpenAt = now;
    }
    const isClearlyLate = this.#finishes >= FAST_EVIDENCE && this.#slow > this.#finishes * FAST_SLOW_SHARE;
    if (this.#finishes >= EVIDENCE || isClearlyLate) this.#judge(now);
  }

  /** Why a default-rate stream would be refused now, or null if it would be admitted. */
  refusal(costWeight = 1): { reason: RefusalReason; details: string } | null {
    if (this.choose(costWeight) !== null) return null;
    const measuredCost = this.#measuredCost();
    const describe = (w: W): string => {
      if (w.threadId === null) return `worker ${w.index}: restarting`;
      const cost = this.#costOf(w, measuredCost);
      const own = w.isCostMeasured ? w.costPerAudioSecond.toFixed(4) : 'not measured yet';
      return `worker ${w.index}: ${w.usedHandles} streams, predicted load ${(w.admittedWeight * cost).toFixed(2)} (cost ${cost.toFixed(4)} s per audio-s, its own ${own})`;
    };
    const workers = this.#workers.map(describe).join('; ');
    const limit = this.limit();
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

  /** Would the worker's predicted load (share of a core) at `cost` stay within maxUtilisation with the stream? */
  #fits(worker: W, costWeight: number, cost: number): boolean {
    if (worker.threadId === null || worker.freeHandles === 0) return false;
    return (worker.admittedWeight + costWeight) * cost <= this.#options.maxUtilisation + EPSILON;
  }

  /** The mean cost the running workers measured, or null while none has (computed once per decision). */
  #measuredCost(): number | null {
    let sum = 0;
    let measured = 0;
    for (const worker of this.#workers) {
      if (worker.threadId === null || !worker.isCostMeasured) continue;
      sum += worker.costPerAudioSecond;
      measured += 1;
    }
    return measured > 0 ? sum / measured : null;
  }

  /** The cost a worker is predicted with: the workers' measured mean, or its own seed while there is none. */
  #costOf(worker: W, measuredCost: number | null): number {
    return measuredCost ?? worker.costPerAudioSecond;
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

  #judge(now: number): void {
    const judged = { openStreams: this.#maxOpen, finishes: this.#finishes, slow: this.#slow };
    this.#finishes = 0;
    this.#slow = 0;
    const current = this.#learned ?? Math.max(this.#floor(), this.capacity());
    if (judged.slow > judged.finishes * SLOW_SHARE) {
      this.#lastDecreaseAt = now;
      const limit = Math.max(this.#floor(), Math.min(current, Math.floor(judged.openStreams * DECREASE)));
      if (limit === this.#learned) return;
      this.#learned = limit;
      this.#lastDecrease = { limit, ...judged };
      this.#options.onLimitChange?.(this.#lastDecrease, 'decrease');
      return;
    }
    // Only final texts served with the limit itself open say it can be raised: raised on 90 % of it,
    // the old design passed the level that had been late within three good seconds.
    if (judged.slow === 0 && this.#learned !== null && judged.openStreams >= this.#learned * TESTED_SHARE) {
      this.#learned += Math.max(1, Math.round(this.#learned * INCREASE));
      this.#options.onLimitChange?.({ limit: this.#learned, ...judged }, 'increase');
    }
  }
}
