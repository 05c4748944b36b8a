import type { Logger } from 'pino';
import type { SessionOwnership } from '../cluster/ownership.js';
import {
  AudioLimitExceededError,
  RateLimitedError,
  SessionBusyElsewhereError,
  SessionNotFoundError,
  StoreUnavailableError,
  toVoxgateError,
  type VoxgateError,
} from '../errors.js';
import type { ClientEvent } from '../protocol/client-events.js';
import type { ClientChannel } from './channel.js';
import type { DroppedAudio } from './dropped-audio.js';
import { HeldEvents } from './held-events.js';
import type { Session } from './session.js';
import { SessionLanes } from './session-lanes.js';
import type { SessionManager } from './session-manager.js';

/**
 * Work waiting behind a session's pending event, or held for a connection's session_resume. Audio is
 * bounded by bytes (1 MiB is 32 s of 16 kHz PCM16, far more than a message_end or a reconnect takes);
 * control events come through the connection's rate budget and are bounded by count.
 */
export const QUEUE_LIMITS = { maxBytes: 1024 * 1024, maxJobs: 4096 } as const;

export type Job =
  | { readonly kind: 'event'; readonly channel: ClientChannel; readonly event: ClientEvent; readonly bytes: number }
  | { readonly kind: 'audio'; readonly channel: ClientChannel; readonly pcm: Uint8Array; readonly bytes: number }
  | { readonly kind: 'task'; readonly run: () => Promise<void> | void; readonly bytes: 0 };

export type ConnectionJob = Exclude<Job, { kind: 'task' }>;

export interface SessionRouterOptions {
  sessions: SessionManager;
  droppedAudio: DroppedAudio;
  logger: Logger;
  /** Runs a connection's job once the connection may act on the session. Must not reject. */
  run(sessionId: string, job: ConnectionJob): Promise<void> | void;
  /** Sends an error to the connection (and logs it). */
  reply(channel: ClientChannel, sessionId: string | null, error: VoxgateError, eventType: string): void;
  /** The session had no live connection and `channel` named it first: it is now this connection's. */
  onTaken(channel: ClientChannel, session: Session): void;
  /**
   * Shared sessions (SESSION_STORE=redis): a job for a session this node does not hold waits, in the
   * session's lane, until the node has taken it (handover from a live node, or a dead node's lease expired).
   */
  ownership?: SessionOwnership;
}

/**
 * Gets each job of a session to the right place, in order: runs it (one at a time per session, in
 * SessionLanes), or holds it for the connection's session_resume while another connection is attached
 * (the takeover rule, docs/protocol.md), or refuses it once the bounded queue is full.
 */
export class SessionRouter {
  readonly #options: SessionRouterOptions;
  readonly #lanes: SessionLanes<Job>;
  readonly #held = new HeldEvents<Job>(QUEUE_LIMITS);

  constructor(options: SessionRouterOptions) {
    this.#options = options;
    this.#lanes = new SessionLanes<Job>(QUEUE_LIMITS, (sessionId, job) => this.#runJob(sessionId, job));
  }

  isBusy(sessionId: string): boolean {
    return this.#lanes.isBusy(sessionId);
  }

  submit(sessionId: string, job: ConnectionJob): void {
    if (!this.#lanes.submit(sessionId, job)) this.#refuse(sessionId, job);
  }

  /** Session work of the server's own (parking a recording): queued whatever the limits, never refused. */
  submitTask(sessionId: string, run: () => Promise<void> | void): void {
    this.#lanes.submitAlways(sessionId, { kind: 'task', run, bytes: 0 });
  }

  /** session_resume ran: what this connection sent for the session before it runs next, in order. */
  releaseHeld(channel: ClientChannel, sessionId: string): number {
    const held = this.#held.take(channel, sessionId);
    if (held.length > 0) this.#lanes.submitFirst(sessionId, held);
    return held.length;
  }

  /**
   * A connection closed (and was detached). Each session it leaves without a connection goes to a
   * connection that already named it (a reconnect whose events are held), which then runs them; the
   * sessions nobody took are returned.
   */
  channelClosed(channel: ClientChannel, orphaned: readonly Session[]): Session[] {
    this.#held.forget(channel);
    const untaken: Session[] = [];
    for (const session of orphaned) {
      const successor = this.#held.firstHolder(session.id);
      if (successor && this.#options.sessions.claim(session.id, successor) === 'taken') {
        this.#options.onTaken(successor, session);
        this.releaseHeld(successor, session.id);
      } else {
        untaken.push(session);
      }
    }
    return untaken;
  }

  #runJob(sessionId: string, job: Job): Promise<void> | void {
    if (job.kind === 'task') return this.#runTask(sessionId, job.run);
    const { channel } = job;
    if (channel.isClosed) return undefined;
    const { ownership } = this.#options;
    if (ownership && !this.#options.sessions.holds(sessionId)) return this.#takeThenRun(ownership, sessionId, job);
    return this.#runConnectionJob(sessionId, job);
  }

  /**
   * Takes the session for this node first (the lane waits: later jobs of the session stay in order
   * behind this one, and other sessions are not held up). A session taken but not loaded in the end
   * (its connection left, or it is another credential owner's) is given back at once.
   */
  async #takeThenRun(ownership: SessionOwnership, sessionId: string, job: ConnectionJob): Promise<void> {
    // Only session_resume asks the other node to hand the session over, as on one node only a
    // session_resume takes a session another connection is attached to (two live connections on two
    // nodes would otherwise take it from each other at every event). Any other event is held for this
    // connection's session_resume, exactly as on one node: the app's reconnect sends its queued audio
    // before the resume, and that audio must be neither lost nor answered with an error.
    const isResume = job.kind === 'event' && job.event.type === 'session_resume';
    const outcome = await ownership.acquire(sessionId, { handover: isResume });
    if (outcome === 'busy' && !isResume) {
      this.#hold(job.channel, sessionId, job);
      return;
    }
    if (outcome === 'busy' || outcome === 'unavailable') {
      const error = outcome === 'busy'
        ? new SessionBusyElsewhereError(`session ${sessionId} is served by another node that did not hand it over in time`, { details: `session_id: ${sessionId}` })
        : new StoreUnavailableError(`the shared session store cannot be reached to take session ${sessionId}`, { details: `session_id: ${sessionId}` });
      this.#options.reply(job.channel, sessionId, error, jobType(job));
      return;
    }
    try {
      await this.#runConnectionJob(sessionId, job);
    } finally {
      if (outcome === 'owned' && !this.#options.sessions.holds(sessionId)) ownership.release(sessionId);
    }
  }

  #runConnectionJob(sessionId: string, job: ConnectionJob): Promise<void> | void {
    const { channel } = job;
    if (channel.isClosed) return undefined;
    if (job.kind === 'event' && job.event.type === 'session_resume') return this.#options.run(sessionId, job);
    let access: ReturnType<SessionManager['claim']>;
    try {
      access = this.#options.sessions.claim(sessionId, channel);
    } catch (err) {
      this.#options.reply(channel, sessionId, toVoxgateError(err), job.kind === 'event' ? job.event.type : 'binary audio');
      return undefined;
    }
    if (access === 'busy') {
      this.#hold(channel, sessionId, job);
      return undefined;
    }
    if (access === 'taken') this.#options.onTaken(channel, this.#options.sessions.attached(sessionId, channel));
    // 'missing' runs too: the handler answers SESSION_NOT_FOUND.
    return this.#options.run(sessionId, job);
  }

  #runTask(sessionId: string, run: () => Promise<void> | void): Promise<void> | void {
    const fail = (err: unknown): void => this.#options.logger.error({ err: toVoxgateError(err), sessionId }, 'session task failed');
    try {
      const result = run();
      if (result) return result.catch(fail);
    } catch (err) {
      fail(err);
    }
    return undefined;
  }

  #hold(channel: ClientChannel, sessionId: string, job: ConnectionJob): void {
    const isFirst = !this.#held.has(channel, sessionId);
    const result = this.#held.hold(channel, sessionId, job);
    if (isFirst) channel.log.info({ sessionId }, 'events held: the session is attached to another connection; waiting for session_resume');
    if (result === 'held') return;
    if (isAudio(job)) this.#options.droppedAudio.count();
    if (result !== 'overflowed') return;
    channel.log.warn({ sessionId, limits: QUEUE_LIMITS }, 'held events over the limit; later ones are dropped until session_resume');
    const error = new SessionNotFoundError(`session ${sessionId} not found`, { details: `session_id: ${sessionId}` });
    this.#options.reply(channel, sessionId, error, jobType(job));
  }

  /** The session's queue is full: audio is dropped with one error per busy stretch; a control event gets its own. */
  #refuse(sessionId: string, job: ConnectionJob): void {
    const { channel } = job;
    if (isAudio(job)) {
      this.#options.droppedAudio.count();
      channel.log.debug({ sessionId, bytes: job.bytes }, 'audio dropped: the session is busy and its queue is full');
      if (!this.#lanes.firstRefusal(sessionId)) return;
      channel.log.warn({ sessionId, limits: QUEUE_LIMITS }, 'audio dropped: the session is busy and its queue is full');
      const message = `session ${sessionId} is busy and ${QUEUE_LIMITS.maxBytes} bytes of audio are already waiting; later audio is discarded`;
      this.#options.reply(channel, sessionId, new AudioLimitExceededError(message, { details: `max_queued_audio_bytes: ${QUEUE_LIMITS.maxBytes}` }), jobType(job));
      return;
    }
    const message = `session ${sessionId} is busy and ${QUEUE_LIMITS.maxJobs} events are already waiting; event ${jobType(job)} dropped`;
    this.#options.reply(channel, sessionId, new RateLimitedError(message, { details: `max_queued_events: ${QUEUE_LIMITS.maxJobs}` }), jobType(job));
  }
}

function isAudio(job: ConnectionJob): boolean {
  return job.kind === 'audio' || job.event.type === 'audio_stream';
}

function jobType(job: ConnectionJob): string {
  return job.kind === 'audio' ? 'binary audio' : job.event.type;
}
