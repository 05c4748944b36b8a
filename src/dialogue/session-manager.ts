import type { SessionOwnership } from '../cluster/ownership.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Quotas } from '../quotas/quotas.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { SessionLimitExceededError, SessionNotFoundError, toVoxgateError, type VoxgateError } from '../errors.js';
import { LogLimiter } from '../log-limiter.js';
import { errorEvent, type ProfileJson, type ServerEvent } from '../protocol/server-events.js';
import { estimateSessionBytes } from '../store/record-size.js';
import type { SessionRecord, SessionStore, StoredMessage, StoreHealth } from '../store/session-store.js';
import type { ServiceState } from '../stt/engine.js';
import type { ClientChannel } from './channel.js';
import type { RequestManager } from './request-manager.js';
import { Session } from './session.js';
import { SessionBounds, type SessionBoundsOptions } from './session-bounds.js';

export interface SessionManagerOptions extends SessionBoundsOptions {
  store: SessionStore;
  requests: RequestManager;
  logger: Logger;
  maxSessionsPerConnection: number;
  /** Sessions untouched for longer are deleted by the clean-up sweep. */
  maxAgeMs: number;
  cleanupIntervalMs: number;
  metrics?: Metrics;
  /** Live sessions per owner and per address (conversation_start is refused past it). */
  quotas?: Quotas;
  /** Shared sessions (SESSION_STORE=redis): a session leaving memory gives its lease up. */
  ownership?: SessionOwnership;
}

export interface NewSessionInput {
  responseCount: number;
  scenarioDescription: string | null;
  historyMessages: ReadonlyArray<{ message_id: string; sender: string; content: string }>;
  userProfile: ProfileJson;
  targetProfile: ProfileJson;
  /** What the protocol layer dropped or shortened to make conversation_start fit its limits (logged). */
  adjustments?: readonly string[];
}

export interface SessionManagerHealth {
  status: ServiceState;
  reason: string | null;
  /** Sessions held in memory: attached ones, and detached ones whose recording is still open. */
  activeSessions: number;
  /** Their estimated memory (SESSION_MEMORY_MAX_MB bounds it). */
  heldBytes: number;
  attachedConnections: number;
  store: StoreHealth;
}

// Persisting updatedAt on every read-only event would cost a write per event; once a minute is enough
// to keep a session in use from expiring.
const TOUCH_PERSIST_INTERVAL_MS = 60_000;
// A client that keeps sending oversized conversation_starts gets one warning line per interval, not one
// per session.
const ADJUSTMENT_LOG_INTERVAL_MS = 10_000;

/**
 * Owns which sessions exist in this process and which connections are attached to which. A connection
 * may act on a session only while attached (created or resumed it); to every other connection the
 * session does not exist (SESSION_NOT_FOUND), so one client can never read or steer another's session.
 *
 * It also bounds them. Memory holds only sessions with a connection (or with a recording still open):
 * when the last connection leaves, the session is dropped from memory and lives on in the store, from
 * which session_resume loads it again. The sessions held are bounded in estimated bytes
 * (maxMemoryBytes), the sessions in existence per client address (maxSessionsPerAddress) and in the
 * store in all (maxStoredSessions); each refusal has its own error code.
 */
export class SessionManager {
  readonly #options: SessionManagerOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #byChannel = new Map<ClientChannel, Set<string>>();
  readonly #lastPersistedTouch = new Map<string, number>();
  readonly #bounds: SessionBounds;
  /** Detached sessions still in memory (their recording was open); dropped once it is not. */
  readonly #detachedHeld = new Set<Session>();
  /** Per connection, per attached session: uncounts it from the live-session quota. */
  readonly #liveSessionReleases = new Map<ClientChannel, Map<string, () => void>>();
  #cleanupTimer: NodeJS.Timeout | null = null;
  readonly #adjustmentLog = new LogLimiter({ intervalMs: ADJUSTMENT_LOG_INTERVAL_MS, linesPerInterval: 1 });

  constructor(options: SessionManagerOptions) {
    this.#options = options;
    this.#bounds = new SessionBounds(options);
  }

  get size(): number {
    return this.#sessions.size;
  }

  create(channel: ClientChannel, input: NewSessionInput): Session {
    this.#assertRoomFor(channel);
    this.#options.quotas?.assertLiveSession(channel);
    const { store } = this.#options;
    this.#bounds.assertCanCreate(channel.remoteAddress, { sessions: () => store.health().sessions, bytes: () => store.sizeBytes() });
    const now = new Date().toISOString();
    const record: SessionRecord = {
      id: randomUUID(),
      owner: channel.owner,
      createdAt: now,
      updatedAt: now,
      scenarioDescription: input.scenarioDescription,
      responseCount: input.responseCount,
      userProfile: input.userProfile,
      targetProfile: input.targetProfile,
      historyMessages: input.historyMessages.map(
        (message): StoredMessage => ({
          messageId: message.message_id,
          sender: message.sender,
          content: message.content,
          createdAt: now,
          type: 'history',
        }),
      ),
      messages: [],
      focusedMessageIds: [],
      modifications: [],
      recording: null,
    };
    const bytes = estimateSessionBytes(record);
    this.#assertMemoryRoom(bytes);
    this.#options.store.create(record);
    const session = this.#adopt(record, bytes);
    this.#bounds.countForAddress(session.id, channel.remoteAddress);
    this.#attach(session, channel);
    session.log.info({ historyMessages: record.historyMessages.length }, 'session created');
    this.#options.metrics?.sessionsCreated.inc();
    if (input.adjustments && input.adjustments.length > 0) this.#logAdjustments(session, channel, input.adjustments);
    return session;
  }

  /** Whether this process holds the session in memory (with shared sessions: whether it serves it). */
  holds(sessionId: string): boolean {
    return this.#sessions.has(sessionId);
  }

  /** The session held in memory, whoever is attached, or null. */
  held(sessionId: string): Session | null {
    return this.#sessions.get(sessionId) ?? null;
  }

  /**
   * Another node serves the session now (a handover, or this node lost its lease): its work here stops,
   * every attached connection is told with `reason` (SESSION_MOVED) and detached from it, and it leaves
   * memory. Unlike end(), the store keeps it: the other node carries on from what was written.
   */
  evict(session: Session, reason: VoxgateError): void {
    if (this.#sessions.get(session.id) !== session) return;
    this.#options.requests.cancel(session.id);
    session.detachRecording()?.stream.abort();
    for (const channel of [...session.channels]) {
      channel.send(errorEvent(session.id, reason));
      session.detachChannel(channel);
      this.#byChannel.get(channel)?.delete(session.id);
      this.#releaseLive(channel, session.id);
    }
    this.#drop(session);
    this.#bounds.forget(session.id);
    session.log.info({ code: reason.code }, 'session left this node: another node serves it now');
  }

  /** The session if `channel` is attached to it; SESSION_NOT_FOUND otherwise. */
  attached(sessionId: string, channel: ClientChannel): Session {
    const session = this.#sessions.get(sessionId);
    if (!session || !session.channels.has(channel)) {
      throw new SessionNotFoundError(`session ${sessionId} not found`, { details: `session_id: ${sessionId}` });
    }
    this.#touch(session);
    return session;
  }

  /**
   * Whether `channel` may act on a session, under the takeover rule: a session no live connection is
   * attached to (in memory, or only in the store) is attached to the first connection that names it
   * (`taken`); one attached to other connections is `busy` (its connection may be half-open: the caller
   * holds the event until this connection's session_resume); `missing` if there is no such session.
   */
  claim(sessionId: string, channel: ClientChannel): 'attached' | 'taken' | 'busy' | 'missing' {
    const session = this.#sessions.get(sessionId);
    if (session?.channels.has(channel)) return 'attached';
    // Another owner's session does not exist for this connection: not held, not taken over (issue 14).
    if (session && !mayAccess(session.owner, channel)) return 'missing';
    if (session && session.channels.size > 0) return 'busy';
    try {
      this.resume(sessionId, channel);
    } catch (err) {
      if (err instanceof SessionNotFoundError) return 'missing';
      throw err;
    }
    return 'taken';
  }

  /** Attaches `channel` to a session kept in memory or, after a restart, in the store. */
  resume(sessionId: string, channel: ClientChannel): Session {
    let session = this.#sessions.get(sessionId);
    if (session && !mayAccess(session.owner, channel)) throw notFound(sessionId);
    if (!session) {
      const record = this.#options.store.load(sessionId);
      // Another owner's stored session is answered exactly as an unknown id, and not loaded.
      if (!record || !mayAccess(record.owner ?? null, channel)) throw notFound(sessionId);
      const bytes = estimateSessionBytes(record);
      this.#assertMemoryRoom(bytes);
      session = this.#adopt(record, bytes);
      session.log.info({ messages: record.messages.length, recording: record.recording !== null }, 'session loaded from store');
    }
    this.#detachedHeld.delete(session);
    // A session stored before this process started is counted for the address that resumes it; a
    // resume itself is never refused for the address limit (the user's conversation must come back).
    if (!this.#bounds.isCounted(session.id)) this.#bounds.countForAddress(session.id, channel.remoteAddress);
    if (!session.channels.has(channel)) {
      this.#assertRoomFor(channel);
      this.#attach(session, channel);
    }
    this.#touch(session);
    return session;
  }

  /** Ends a session for good: cancels its work, deletes it from memory and the store. */
  end(session: Session, reason: string): void {
    this.#options.store.delete(session.id);
    this.#options.requests.cancel(session.id);
    const recording = session.detachRecording();
    recording?.stream.abort();
    for (const channel of session.channels) {
      this.#byChannel.get(channel)?.delete(session.id);
      this.#releaseLive(channel, session.id);
    }
    this.#drop(session);
    this.#bounds.forget(session.id);
    session.log.info({ reason }, 'session deleted');
  }

  /**
   * A connection closed: detach it everywhere; sessions left without a connection stop their LLM work.
   * Returns those sessions.
   */
  detachChannel(channel: ClientChannel): Session[] {
    const sessionIds = this.#byChannel.get(channel);
    this.#byChannel.delete(channel);
    for (const release of this.#liveSessionReleases.get(channel)?.values() ?? []) release();
    this.#liveSessionReleases.delete(channel);
    const orphaned: Session[] = [];
    if (!sessionIds) return orphaned;
    for (const sessionId of sessionIds) {
      const session = this.#sessions.get(sessionId);
      if (!session) continue;
      session.detachChannel(channel);
      if (session.channels.size === 0) {
        this.#options.requests.cancel(sessionId);
        session.log.info({ recording: session.liveRecording !== null }, 'last connection left; session kept for resume');
        orphaned.push(session);
        this.#detachedHeld.add(session);
      }
    }
    this.#releaseDetached();
    return orphaned;
  }

  /**
   * Text a client adds to a session after it was created (a chosen reply, a modification) is held too:
   * SESSION_CAPACITY_EXCEEDED when it would take the sessions in memory past SESSION_MEMORY_MAX_MB.
   * Call before the change; grew() after it.
   */
  assertRoomToGrow(bytes: number): void {
    this.#assertMemoryRoom(bytes);
  }

  /** The session now holds `bytes` more (counted whether or not it was asked first: a transcript is never refused). */
  grew(session: Session, bytes: number): void {
    if (this.#sessions.get(session.id) === session) this.#bounds.grow(session.id, bytes);
  }

  /** Sends an event to every connection attached to the session (and to no other). */
  broadcast(session: Session, event: ServerEvent): void {
    for (const channel of session.channels) channel.send(event);
  }

  /** Would broadcast() deliver an event of this type to any connection attached to the session? */
  anyWants(session: Session, type: ServerEvent['type']): boolean {
    for (const channel of session.channels) if (channel.wants?.(type) ?? true) return true;
    return false;
  }

  /** Deletes sessions untouched for maxAgeMs; returns how many. */
  sweepExpired(now = Date.now()): number {
    const before = new Date(now - this.#options.maxAgeMs).toISOString();
    let expiredIds: string[];
    try {
      expiredIds = this.#options.store.deleteExpired(before);
    } catch (err) {
      this.#options.logger.error({ err: toVoxgateError(err) }, 'session clean-up failed');
      return 0;
    }
    for (const [id, session] of this.#sessions) {
      if (session.updatedAt < before && session.channels.size === 0 && !expiredIds.includes(id)) expiredIds.push(id);
    }
    for (const id of expiredIds) {
      const session = this.#sessions.get(id);
      if (!session) {
        this.#bounds.forget(id);
        this.#options.logger.info({ sessionId: id, reason: 'expired' }, 'session deleted');
        continue;
      }
      try {
        this.end(session, 'expired');
      } catch (err) {
        session.log.error({ err: toVoxgateError(err) }, 'could not delete expired session; will retry at the next sweep');
      }
    }
    return expiredIds.length;
  }

  startCleanup(): void {
    if (this.#cleanupTimer) return;
    this.#cleanupTimer = setInterval(() => this.sweepExpired(), this.#options.cleanupIntervalMs);
    this.#cleanupTimer.unref();
  }

  /** Stops the sweep and aborts every live STT stream; the store keeps the sessions for the next start. */
  close(): void {
    if (this.#cleanupTimer) clearInterval(this.#cleanupTimer);
    this.#cleanupTimer = null;
    for (const session of this.#sessions.values()) session.liveRecording?.stream.abort();
  }

  /** Sessions in memory: `live` with a connection, `detached` without one (their recording is open). For /metrics. */
  counts(): { live: number; detached: number } {
    const detached = this.#detachedHeld.size;
    return { live: this.#sessions.size - detached, detached };
  }

  health(): SessionManagerHealth {
    const store = this.#options.store.health();
    return {
      status: store.status,
      reason: store.lastError,
      activeSessions: this.#sessions.size,
      heldBytes: this.#bounds.heldBytes,
      attachedConnections: this.#byChannel.size,
      store,
    };
  }

  #adopt(record: SessionRecord, bytes: number): Session {
    const session = new Session(record, this.#options.store, this.#options.logger.child({ sessionId: record.id }));
    this.#sessions.set(record.id, session);
    this.#bounds.hold(record.id, bytes);
    return session;
  }

  /** Forgets a session's memory (not its store row). */
  #drop(session: Session): void {
    if (this.#sessions.get(session.id) !== session) return;
    this.#sessions.delete(session.id);
    this.#lastPersistedTouch.delete(session.id);
    this.#detachedHeld.delete(session);
    this.#bounds.release(session.id);
    this.#options.ownership?.release(session.id);
  }

  /**
   * Drops from memory every detached session without an open recording; it lives on in the store and
   * session_resume loads it again. Events of the session still being handled keep their reference and
   * write to the store as always; the Dialogue runs a later session_resume only after them.
   */
  #releaseDetached(): void {
    for (const session of this.#detachedHeld) {
      if (session.channels.size > 0) {
        this.#detachedHeld.delete(session);
      } else if (session.liveRecording === null) {
        this.#persistTouch(session);
        this.#drop(session);
        session.log.debug('session released from memory; it stays in the store for session_resume');
      }
    }
  }

  /** Room in memory for `bytes` more, once the detached sessions that can go have gone. */
  #assertMemoryRoom(bytes: number): void {
    this.#releaseDetached();
    this.#bounds.assertMemoryFor(bytes);
  }

  #attach(session: Session, channel: ClientChannel): void {
    session.attachChannel(channel);
    let ids = this.#byChannel.get(channel);
    if (!ids) {
      ids = new Set();
      this.#byChannel.set(channel, ids);
    }
    ids.add(session.id);
    const quotas = this.#options.quotas;
    if (quotas) {
      let releases = this.#liveSessionReleases.get(channel);
      if (!releases) {
        releases = new Map();
        this.#liveSessionReleases.set(channel, releases);
      }
      if (!releases.has(session.id)) releases.set(session.id, quotas.countLiveSession(channel));
    }
  }

  #releaseLive(channel: ClientChannel, sessionId: string): void {
    const releases = this.#liveSessionReleases.get(channel);
    releases?.get(sessionId)?.();
    releases?.delete(sessionId);
    if (releases?.size === 0) this.#liveSessionReleases.delete(channel);
  }

  #assertRoomFor(channel: ClientChannel): void {
    const count = this.#byChannel.get(channel)?.size ?? 0;
    if (count >= this.#options.maxSessionsPerConnection) {
      throw new SessionLimitExceededError(
        `this connection already has ${count} sessions (limit ${this.#options.maxSessionsPerConnection}); end one first`,
        { details: `max_sessions_per_connection: ${this.#options.maxSessionsPerConnection}` },
      );
    }
  }

  #logAdjustments(session: Session, channel: ClientChannel, adjustments: readonly string[]): void {
    const suppressed = this.#adjustmentLog.take();
    const fields = { adjustments, connectionId: channel.id };
    if (suppressed !== null) session.log.warn({ ...fields, suppressed }, 'conversation_start did not fit the limits: adjusted, not refused');
    else session.log.debug(fields, 'conversation_start did not fit the limits: adjusted, not refused');
  }

  #touch(session: Session): void {
    session.touch();
    const now = Date.now();
    if (now - (this.#lastPersistedTouch.get(session.id) ?? 0) < TOUCH_PERSIST_INTERVAL_MS) return;
    this.#lastPersistedTouch.set(session.id, now);
    this.#persistTouch(session);
  }

  #persistTouch(session: Session): void {
    try {
      session.updateSettings({});
    } catch (err) {
      session.log.warn({ err: toVoxgateError(err) }, 'could not persist session activity time');
    }
  }
}

/**
 * Whether `channel` may see a session owned by `owner`: a session created without credentials (owner
 * null) is open to every connection (the app's drop-in behaviour); an owned one only to its owner.
 */
function mayAccess(owner: string | null, channel: ClientChannel): boolean {
  return owner === null || owner === channel.owner;
}

function notFound(sessionId: string): SessionNotFoundError {
  return new SessionNotFoundError(`session ${sessionId} not found`, { details: `session_id: ${sessionId}` });
}
