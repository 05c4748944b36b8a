import type { ClientChannel } from './channel.js';
import { JobQueue, type JobQueueLimits, type QueuedJob } from './job-queue.js';

interface Hold<T extends QueuedJob> {
  readonly queue: JobQueue<T>;
  hasOverflowed: boolean;
}

/** What one connection holds, over all the sessions it named. */
interface ChannelHolds<T extends QueuedJob> {
  readonly sessions: Map<string, Hold<T>>;
  bytes: number;
  jobs: number;
}

export type HoldResult = 'held' | 'overflowed' | 'dropped';

/**
 * Events a connection sent for a session that another connection is still attached to. The app's
 * reconnect sends the audio and timer events it queued before its session_resume, and the server may not
 * have noticed yet that the old socket died (half-open): those events wait here, in order and bounded,
 * until this connection's session_resume (or until the old connection closes and this one takes the
 * session), and then run as if they had come after it. A connection's holds go when it closes.
 *
 * The limits bound what one connection holds over all the sessions it names, not per session: a client
 * that knows many session ids (its own, from other connections) must not hold a megabyte for each.
 */
export class HeldEvents<T extends QueuedJob> {
  readonly #limits: JobQueueLimits;
  readonly #byChannel = new Map<ClientChannel, ChannelHolds<T>>();

  constructor(limits: JobQueueLimits) {
    this.#limits = limits;
  }

  has(channel: ClientChannel, sessionId: string): boolean {
    return this.#byChannel.get(channel)?.sessions.has(sessionId) ?? false;
  }

  /**
   * Holds a job. `overflowed`: this one did not fit and is the first that did not (report it once);
   * `dropped`: it did not fit either, already reported.
   */
  hold(channel: ClientChannel, sessionId: string, job: T): HoldResult {
    let holds = this.#byChannel.get(channel);
    if (!holds) {
      holds = { sessions: new Map(), bytes: 0, jobs: 0 };
      this.#byChannel.set(channel, holds);
    }
    let hold = holds.sessions.get(sessionId);
    if (!hold) {
      hold = { queue: new JobQueue<T>(this.#limits), hasOverflowed: false };
      holds.sessions.set(sessionId, hold);
    }
    if (hold.hasOverflowed) return 'dropped';
    const fits = holds.jobs < this.#limits.maxJobs && holds.bytes + job.bytes <= this.#limits.maxBytes;
    if (fits && hold.queue.push(job)) {
      holds.bytes += job.bytes;
      holds.jobs++;
      return 'held';
    }
    hold.hasOverflowed = true;
    return 'overflowed';
  }

  /** Takes (and forgets) what `channel` held for the session, oldest first. */
  take(channel: ClientChannel, sessionId: string): T[] {
    const holds = this.#byChannel.get(channel);
    const hold = holds?.sessions.get(sessionId);
    if (!holds || !hold) return [];
    holds.sessions.delete(sessionId);
    if (holds.sessions.size === 0) this.#byChannel.delete(channel);
    holds.bytes -= hold.queue.bytes;
    holds.jobs -= hold.queue.size;
    const jobs: T[] = [];
    for (let job = hold.queue.shift(); job; job = hold.queue.shift()) jobs.push(job);
    return jobs;
  }

  /** A live connection holding events for the session (the one that began holding first), or null. */
  firstHolder(sessionId: string): ClientChannel | null {
    for (const [channel, holds] of this.#byChannel) if (holds.sessions.has(sessionId) && !channel.isClosed) return channel;
    return null;
  }

  /** The connection closed: what it held is dropped (it can no longer be answered). */
  forget(channel: ClientChannel): void {
    this.#byChannel.delete(channel);
  }
}
