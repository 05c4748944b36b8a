import type { AcquireOutcome } from '../store/redis-messages.js';

export type { AcquireOutcome };

/**
 * Which node serves a session, when sessions are shared (SESSION_STORE=redis). A node serves a session
 * only while it holds the session's lease; the store's fenced writes refuse every other node.
 * RedisSessionStore implements it; with a local store there is no ownership (every session is this
 * process's).
 */
export interface SessionOwnership {
  /**
   * Takes the session for this node without blocking the event loop: at once when no node holds it.
   * When another node does: with `handover` (session_resume), after that node handed it over, or after
   * its lease expired when it died; without, `busy` at once (the client must resume it here first).
   */
  acquire(sessionId: string, options: { handover: boolean }): Promise<AcquireOutcome>;
  /** The session left this node's memory: its lease is given up so another node may take it at once. */
  release(sessionId: string): void;
}
