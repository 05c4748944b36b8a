import { JobQueue, type JobQueueLimits, type QueuedJob } from './job-queue.js';

/** Runs one job; a returned promise keeps the session's lane busy until it settles. Must not reject. */
export type JobRunner<T> = (sessionId: string, job: T) => Promise<void> | void;

interface Lane<T extends QueuedJob> {
  queue: JobQueue<T>;
  /** One refusal report per busy stretch of the lane (see SessionLanes.firstRefusal). */
  hasReportedRefusal: boolean;
}

/**
 * Runs the work of one session one job after another: a job that arrives while an earlier one of the
 * same session is still pending (message_end waits for the recogniser's final text) waits its turn in a
 * bounded queue. A lane exists only while work is pending, so an idle session costs nothing and a job
 * for it runs at once, without being queued.
 */
export class SessionLanes<T extends QueuedJob> {
  readonly #lanes = new Map<string, Lane<T>>();
  readonly #limits: JobQueueLimits;
  readonly #run: JobRunner<T>;

  constructor(limits: JobQueueLimits, run: JobRunner<T>) {
    this.#limits = limits;
    this.#run = run;
  }

  isBusy(sessionId: string): boolean {
    return this.#lanes.has(sessionId);
  }

  /** Runs the job now, or queues it behind the session's pending work; false when the queue is full (not run). */
  submit(sessionId: string, job: T): boolean {
    const lane = this.#lanes.get(sessionId);
    if (lane) return lane.queue.push(job);
    this.#start(sessionId, job);
    return true;
  }

  /**
   * Runs `jobs` before anything already queued for the session (events a connection sent earlier that
   * were held elsewhere), whatever the limits: whoever held them bounded them. Only synchronous jobs may
   * call this while they run.
   */
  submitFirst(sessionId: string, jobs: readonly T[]): void {
    const lane = this.#lanes.get(sessionId);
    if (!lane) {
      for (const job of jobs) this.submitAlways(sessionId, job);
      return;
    }
    const queue = new JobQueue<T>(this.#limits);
    for (const job of jobs) queue.pushAlways(job);
    for (let job = lane.queue.shift(); job; job = lane.queue.shift()) queue.pushAlways(job);
    lane.queue = queue;
  }

  /** Like submit(), whatever the limits: for one-off tasks that must not be lost (bounded by their owner). */
  submitAlways(sessionId: string, job: T): void {
    const lane = this.#lanes.get(sessionId);
    if (lane) lane.queue.pushAlways(job);
    else this.#start(sessionId, job);
  }

  /** True the first time it is asked during one busy stretch of the session's lane: report a refusal once. */
  firstRefusal(sessionId: string): boolean {
    const lane = this.#lanes.get(sessionId);
    if (!lane || lane.hasReportedRefusal) return false;
    lane.hasReportedRefusal = true;
    return true;
  }

  #start(sessionId: string, job: T): void {
    const pending = this.#run(sessionId, job);
    if (!pending) return;
    // Only synchronous jobs run others inside them (submitFirst), so a pending job finds no lane of a
    // nested job here; the lookup keeps one lane per session even if that contract is ever broken.
    let lane = this.#lanes.get(sessionId);
    if (!lane) {
      lane = { queue: new JobQueue<T>(this.#limits), hasReportedRefusal: false };
      this.#lanes.set(sessionId, lane);
    }
    const next = lane;
    void pending.then(
      () => this.#drain(sessionId, next),
      () => this.#drain(sessionId, next),
    );
  }

  #drain(sessionId: string, lane: Lane<T>): void {
    for (let job = lane.queue.shift(); job; job = lane.queue.shift()) {
      const pending = this.#run(sessionId, job);
      if (pending) {
        void pending.then(
          () => this.#drain(sessionId, lane),
          () => this.#drain(sessionId, lane),
        );
        return;
      }
    }
    if (this.#lanes.get(sessionId) === lane) this.#lanes.delete(sessionId);
  }
}
