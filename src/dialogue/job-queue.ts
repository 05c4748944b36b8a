/** Something waiting its turn; `bytes` is the audio it carries (0 for control events). */
export interface QueuedJob {
  readonly bytes: number;
}

export interface JobQueueLimits {
  /** Audio bytes the queue may hold. */
  maxBytes: number;
  /** Jobs the queue may hold, whatever their size. */
  maxJobs: number;
}

/**
 * A bounded FIFO: push() refuses (returns false) past either limit instead of growing, so whoever
 * queues decides what a refusal means. Taking from the head moves an index (no Array.shift per frame);
 * the array is reset whenever the queue runs empty.
 */
export class JobQueue<T extends QueuedJob> {
  readonly #limits: JobQueueLimits;
  #items: Array<T | undefined> = [];
  #head = 0;
  #bytes = 0;

  constructor(limits: JobQueueLimits) {
    this.#limits = limits;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  push(job: T): boolean {
    if (this.size >= this.#limits.maxJobs || this.#bytes + job.bytes > this.#limits.maxBytes) return false;
    this.#items.push(job);
    this.#bytes += job.bytes;
    return true;
  }

  /** Queues a job whatever the limits: for work bounded elsewhere (or one-off tasks) that must not be lost. */
  pushAlways(job: T): void {
    this.#items.push(job);
    this.#bytes += job.bytes;
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const job = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (job) this.#bytes -= job.bytes;
    if (this.#head === this.#items.length) this.clear();
    return job;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}
