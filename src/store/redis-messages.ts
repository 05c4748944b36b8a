// Every message between RedisSessionStore (main thread) and its worker thread (redis-worker.ts).
// Store calls go over the synchronous port (the main thread blocks on Atomics until the reply);
// lease work and notifications go over the asynchronous one, so they never make the main thread wait.
import type { MessagePort } from 'node:worker_threads';
import type { SessionRecord, SessionSettingsPatch, StoredMessage } from './session-store.js';

export interface RedisWorkerData {
  url: string;
  /** Key prefix; every key the store writes starts with it (tests give each run its own). */
  prefix: string;
  nodeId: string;
  leaseMs: number;
  /** Redis TTL of a session's keys, renewed by every write (SESSION_MAX_PERSISTENCE_HOURS). */
  ttlMs: number;
  commandTimeoutMs: number;
  /** How long a handover may take before acquire() gives up (the other node may still answer later). */
  handoverTimeoutMs: number;
  /** Int32Array over a SharedArrayBuffer: the worker increments [0] after each reply to a sync call. */
  signal: SharedArrayBuffer;
  syncPort: MessagePort;
  asyncPort: MessagePort;
}

export type SyncRequest =
  | { id: number; op: 'create'; record: SessionRecord }
  | { id: number; op: 'load'; sessionId: string }
  | { id: number; op: 'update'; sessionId: string; patch: SessionSettingsPatch; updatedAt: string }
  | { id: number; op: 'appendMessage' | 'finishRecording'; sessionId: string; message: StoredMessage; updatedAt: string }
  | { id: number; op: 'appendModification' | 'appendRecordingSegment'; sessionId: string; text: string; updatedAt: string }
  | { id: number; op: 'delete'; sessionId: string }
  | { id: number; op: 'deleteExpired'; before: string }
  /** Resolves true once connected (or false after waitMs). */
  | { id: number; op: 'ping'; waitMs: number }
  /** Releases every lease this node holds and closes the connections. */
  | { id: number; op: 'close' };

/**
 * `fenced`: another node took the session (its epoch moved on); `unavailable`: Redis could not be
 * reached or did not answer in time; `missing` / `exists` / `not-recording`: the contract's own refusals;
 * `busy`: another live node holds the lease.
 */
export type SyncFailure = 'fenced' | 'unavailable' | 'missing' | 'exists' | 'not-recording' | 'busy' | 'internal';

export type SyncReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; failure: SyncFailure; message: string };

export type AsyncRequest =
  /** handover: ask the holding node to release (session_resume); otherwise `busy` at once. */
  | { id: number; op: 'acquire'; sessionId: string; handover: boolean }
  | { op: 'release'; sessionId: string };

/** acquire: `owned` (this node holds the lease now), `missing` (no such session), `busy` (another node kept it). */
export type AcquireOutcome = 'owned' | 'missing' | 'busy' | 'unavailable';

export type WorkerNotice =
  | { type: 'reply'; id: number; outcome?: AcquireOutcome }
  | { type: 'connection'; state: 'ready' | 'down'; error: string | null }
  | { type: 'stats'; sessions: number; usedBytes: number }
  /** This node's lease on the session is gone (another node took it); the main thread detaches it. */
  | { type: 'lost'; sessionId: string }
  /** Another node asks for the session (a session_resume landed there). */
  | { type: 'release-requested'; sessionId: string; by: string };
