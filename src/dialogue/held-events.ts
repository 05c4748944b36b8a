import type { ClientChannel } from './channel.js';
import { JobQueue, type JobQueueLimits, type QueuedJob } from './job-queue.js';

interface Hold<T extends QueuedJob> {
  readonly queue: JobQueue<T>;
  hasOverflowed: boolean;
}

export type HoldResult = 'held' | 'overflowed' | 'dropped';

/**
 * Events a connection sent for a session that another connection is still attached to. The app's
 * reconnect sends the audio and timer events it queued before its session_resume, and the server may not
 * have noticed yet that the old socket died (half-open): those events wait here, in order and bounded,
 * until this connection's session_resume (or until the old connection closes and this one takes the
 * session), and then run as if they had come after it. A connection's holds go when it closes.
 */
export class HeldEvents<T extends QueuedJob> {
  readonly #limits: JobQueueLimits;
  readonly #byChannel = new Map<ClientChannel, Map<string, Hold<T>>>();

  constructor(limits: JobQueueLimits) {
    this.#limits = limits;
  }

  has(channel: ClientChannel, sessionId: string): boolean {
    return this.#byChannel.get(channel)?.has(sessionId) ?? false;
  }

  /**
   * Holds a job. `overflowed`: this one did not fit and is the first that did not (report it once);
   * `dropped`: it did not fit either, already reported.
   */
  hold(channel: ClientChannel, sessionId: string, job: T): HoldResult {
    let holds = this.#byChannel.get(channel);
    if (!holds) {
      holds = new Map();
      this.#byChannel.set(channel, holds);
    }
    let hold = holds.get(sessionId);
    if (!hold) {
      hold = { queue: new JobQueue<T>(this.#limits), hasOverflowed: false };
      holds.set(sessionId, hold);
    }
    if (!hold.hasOverflowed && hold.queue.push(job)) return 'held';
    if (hold.hasOverflowed) return 'dropped';
    hold.hasOverflowed = true;
    return 'overflowed';
  }

  /** Takes (and forgets) what `channel` held for the session, oldest first. */
  take(channel: ClientChannel, sessionId: string): T[] {
    const holds = this.#byChannel.get(channel);
    const hold = holds?.get(sessionId);
    if (!holds || !hold) return [];
    holds.delete(sessionId);
    if (holds.size === 0) this.#byChannel.delete(channel);
    const jobs: T[] = [];
    for (let job = hold.queue.shift(); job; job = hold.queue.shift()) jobs.push(job);
    return jobs;
  }

  /** A live connection holding events for the session (the one that began holding first), or null. */
  firstHolder(sessionId: string): ClientChannel | null {
    for (const [channel, holds] of this.#byChannel) if (holds.has(sessionId) && !channel.isClosed) return channel;
    return null;
  }

  /** The connection closed: what it held is dropped (it can no longer be answered). */
  forget(channel: ClientChannel): void {
    this.#byChannel.delete(channel);
  }
}
