import { NotRecordingError, SessionNotFoundError } from '../errors.js';
import type { ClientChannel } from './channel.js';
import type { Session } from './session.js';

/** The key under which a connection's binary audio without a recording is reported (not a session id). */
const NO_SESSION = '';
/** Unknown session ids a connection's audio is answered for (one SESSION_NOT_FOUND each); later new ids get none. */
const MAX_UNKNOWN_SESSIONS = 64;

/**
 * Audio for a session without a recording (the app records on after a refused message_start): it is
 * dropped quietly and counted. The app shows every error as a toast, so a connection gets one error per
 * recording-less stretch of a session, and a stretch ends when a recording begins.
 */
export class DroppedAudio {
  /** Per connection, the sessions (NO_SESSION for binary frames without one) already told in this stretch. */
  readonly #reported = new WeakMap<ClientChannel, Set<string>>();
  readonly #unknown = new WeakMap<ClientChannel, Set<string>>();
  #frames = 0;

  /** Audio frames dropped since the start (no recording, or a full queue). */
  get frames(): number {
    return this.#frames;
  }

  /** Counts a frame dropped for another reason (a full queue or hold). */
  count(): void {
    this.#frames++;
  }

  /** Drops a frame; returns the error to send when it is the first of its stretch, else null. */
  drop(channel: ClientChannel, sessionId: string | null, bytes: number): NotRecordingError | null {
    this.#frames++;
    channel.log.debug({ sessionId, bytes }, 'audio dropped: no recording');
    const reported = this.#reportedBy(channel);
    const key = sessionId ?? NO_SESSION;
    if (reported.has(key)) return null;
    reported.add(key);
    if (sessionId !== null) return notRecording(sessionId);
    return new NotRecordingError('binary audio received but this connection has no recording; send message_start first; later audio is dropped quietly');
  }

  /**
   * Audio naming a session that does not exist (it ended, expired, or was lost with a restart without
   * persistence): dropped like audio without a recording, with one SESSION_NOT_FOUND per connection and id.
   */
  dropForUnknownSession(channel: ClientChannel, sessionId: string, bytes: number): SessionNotFoundError | null {
    this.#frames++;
    channel.log.debug({ sessionId, bytes }, 'audio dropped: no such session');
    let unknown = this.#unknown.get(channel);
    if (!unknown) {
      unknown = new Set();
      this.#unknown.set(channel, unknown);
    }
    // Bounded both ways: a client inventing a new id per chunk gets MAX_UNKNOWN_SESSIONS errors (and log
    // lines) in all, not one per chunk (audio is not rate-limited), and the set never grows past them.
    if (unknown.has(sessionId) || unknown.size >= MAX_UNKNOWN_SESSIONS) return null;
    unknown.add(sessionId);
    return new SessionNotFoundError(`session ${sessionId} not found`, { details: `session_id: ${sessionId}` });
  }

  /** The stretch already had its error (a refused message_start): audio that follows is dropped quietly. */
  markReported(channel: ClientChannel, sessionId: string): void {
    this.#reportedBy(channel).add(sessionId);
  }

  /** A recording began on `channel`: the next recording-less stretch may report dropped audio again. */
  recordingBegun(channel: ClientChannel, session: Session): void {
    this.#reported.get(channel)?.delete(NO_SESSION);
    for (const attached of session.channels) this.#reported.get(attached)?.delete(session.id);
  }

  #reportedBy(channel: ClientChannel): Set<string> {
    let reported = this.#reported.get(channel);
    if (!reported) {
      reported = new Set();
      this.#reported.set(channel, reported);
    }
    return reported;
  }
}

export function notRecording(sessionId: string): NotRecordingError {
  return new NotRecordingError(`session ${sessionId} has no recording in progress; send message_start first`, {
    details: `session_id: ${sessionId}`,
  });
}
