import { QuotaExceededError } from '../errors.js';
import { addressKey } from '../dialogue/session-bounds.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Grants } from '../auth/authenticator.js';
import type { QuotaPeers } from '../cluster/shared-quotas.js';

export type QuotaName = 'connections' | 'live_sessions' | 'recordings' | 'generations_per_minute';

/** Each limit applies per owner and per client address; 0 means no limit. */
export interface QuotaLimits {
  /** Open WebSocket connections per owner and per client address. */
  readonly connections: number;
  /** Sessions attached to connections (created or resumed) per owner and per client address. */
  readonly liveSessions: number;
  /** Recordings open (a live speech recognition stream each). */
  readonly recordings: number;
  /** Suggestion generations started per owner and per client address in any 60 s. */
  readonly generationsPerMinute: number;
}

/** Who a piece of work is counted for: the credential's owner (when credentials are on) and the address. */
export interface QuotaSubject {
  readonly owner: string | null;
  readonly remoteAddress: string;
  readonly grants: Grants | null;
}

/** How long a client refused for a concurrency quota is told to wait (one of its own must end first). */
export const CONCURRENCY_RETRY_AFTER_SECONDS = 10;
const WINDOW_MS = 60_000;

export interface QuotaRefusal {
  readonly quota: QuotaName;
  readonly limit: number;
  readonly retryAfterSeconds: number;
}

/**
 * Per-owner and per-address quotas. Each quota is checked for every key of the subject (`owner:<owner>`
 * when it has one, and `address:<IPv4 or IPv6 /64>`); the first key at its limit refuses. A JWT's grants
 * (`max_sessions`, `max_generations_per_minute`) replace the limit for its owner's key. Counts are kept
 * only for keys with something counted: a key whose count returns to zero, or whose window empties, is
 * forgotten, so memory follows current use, not every client ever seen.
 */
export class Quotas {
  readonly #limits: QuotaLimits;
  readonly #metrics: Metrics | null;
  readonly #connections = new Map<string, number>();
  readonly #liveSessions = new Map<string, number>();
  readonly #recordings = new Map<string, number>();
  /** Start times (ms, oldest first) of the generations in the last window, per key. */
  readonly #generations = new Map<string, number[]>();
  #lastSweepAt = -Infinity;
  /** The other nodes' counts (SESSION_STORE=redis), or null: this process counts alone. */
  readonly #peers: QuotaPeers | null;

  constructor(limits: QuotaLimits, metrics: Metrics | null = null, peers: QuotaPeers | null = null) {
    this.#limits = limits;
    this.#metrics = metrics;
    this.#peers = peers;
  }

  /** Null when one more connection fits; the refusal otherwise (answered 429 at the upgrade). */
  checkConnection(subject: QuotaSubject): QuotaRefusal | null {
    return this.#checkConcurrent('connections', this.#connections, subject, () => this.#limits.connections);
  }

  /** Counts an open connection; the returned function uncounts it (once). */
  countConnection(subject: QuotaSubject): () => void {
    if (this.#limits.connections === 0) return noop;
    return this.#count('connections', this.#connections, subject);
  }

  /** Throws QUOTA_EXCEEDED when one more live session does not fit (conversation_start). */
  assertLiveSession(subject: QuotaSubject): void {
    const refusal = this.#checkConcurrent('live_sessions', this.#liveSessions, subject, (isOwnerKey) =>
      isOwnerKey && subject.grants?.maxSessions != null ? subject.grants.maxSessions : this.#limits.liveSessions,
    );
    if (refusal) throw quotaError(refusal);
  }

  /** Counts a session attached to a subject's connection; the returned function uncounts it (once). */
  countLiveSession(subject: QuotaSubject): () => void {
    if (this.#limits.liveSessions === 0 && subject.grants?.maxSessions == null) return noop;
    return this.#count('live_sessions', this.#liveSessions, subject);
  }

  /** Throws QUOTA_EXCEEDED when one more recording does not fit (message_start). */
  assertRecording(subject: QuotaSubject): void {
    const refusal = this.#checkConcurrent('recordings', this.#recordings, subject, () => this.#limits.recordings);
    if (refusal) throw quotaError(refusal);
  }

  /** Counts an open recording; the returned function uncounts it (once). */
  countRecording(subject: QuotaSubject): () => void {
    if (this.#limits.recordings === 0) return noop;
    return this.#count('recordings', this.#recordings, subject);
  }

  /** Takes one generation from the subject's per-minute allowance, or throws QUOTA_EXCEEDED with when to retry. */
  takeGeneration(subject: QuotaSubject, now = Date.now()): void {
    this.#sweep(now);
    const keys = keysOf(subject);
    for (const key of keys) {
      const limit = this.#limitOfGenerations(key, subject);
      const starts = this.#window(key, now);
      const elsewhere = this.#peers?.others('generations_per_minute', key) ?? 0;
      if (limit !== 0 && starts.length + elsewhere >= limit) {
        // The start `limit` places from the newest leaves the window first, and frees the slot. With
        // other nodes' starts counted too, only this node's are known: its oldest, or a whole window.
        const freedAt = starts.length >= limit ? starts[starts.length - limit]! : (starts[0] ?? now);
        const retryAfterMs = freedAt + WINDOW_MS - now;
        throw quotaError(this.#refused({ quota: 'generations_per_minute', limit, retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) }));
      }
    }
    for (const key of keys) {
      if (this.#limitOfGenerations(key, subject) === 0) continue;
      let starts = this.#generations.get(key);
      if (!starts) {
        starts = [];
        this.#generations.set(key, starts);
      }
      starts.push(now);
      this.#peers?.report('generations_per_minute', key, starts.length);
    }
  }

  /** Keys currently held (for the bounded-memory test). */
  get trackedKeys(): number {
    return this.#connections.size + this.#liveSessions.size + this.#recordings.size + this.#generations.size;
  }

  #limitOfGenerations(key: string, subject: QuotaSubject): number {
    const granted = subject.grants?.maxGenerationsPerMinute;
    return key.startsWith('owner:') && granted != null ? granted : this.#limits.generationsPerMinute;
  }

  /** At most once a window: forgets every key whose window emptied (clients that went away). */
  #sweep(now: number): void {
    if (now - this.#lastSweepAt < WINDOW_MS) return;
    this.#lastSweepAt = now;
    for (const key of [...this.#generations.keys()]) this.#window(key, now);
  }

  /** The starts in the last window for `key`, older ones dropped (and the key forgotten when none is left). */
  #window(key: string, now: number): number[] {
    const starts = this.#generations.get(key);
    if (!starts) return [];
    let expired = 0;
    while (expired < starts.length && starts[expired]! <= now - WINDOW_MS) expired++;
    if (expired > 0) {
      starts.splice(0, expired);
      this.#peers?.report('generations_per_minute', key, starts.length);
    }
    if (starts.length === 0) this.#generations.delete(key);
    return starts;
  }

  #checkConcurrent(quota: QuotaName, counts: Map<string, number>, subject: QuotaSubject, limitFor: (isOwnerKey: boolean) => number): QuotaRefusal | null {
    for (const key of keysOf(subject)) {
      const limit = limitFor(key.startsWith('owner:'));
      if (limit !== 0 && (counts.get(key) ?? 0) + (this.#peers?.others(quota, key) ?? 0) >= limit) return this.#refused({ quota, limit, retryAfterSeconds: CONCURRENCY_RETRY_AFTER_SECONDS });
    }
    return null;
  }

  #count(quota: QuotaName, counts: Map<string, number>, subject: QuotaSubject): () => void {
    const keys = keysOf(subject);
    for (const key of keys) {
      const count = (counts.get(key) ?? 0) + 1;
      counts.set(key, count);
      this.#peers?.report(quota, key, count);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const key of keys) {
        const left = (counts.get(key) ?? 1) - 1;
        if (left <= 0) counts.delete(key);
        else counts.set(key, left);
        this.#peers?.report(quota, key, Math.max(0, left));
      }
    };
  }

  #refused(refusal: QuotaRefusal): QuotaRefusal {
    this.#metrics?.quotaRefusals.inc({ quota: refusal.quota });
    return refusal;
  }
}

const noop = (): void => {};

function keysOf(subject: QuotaSubject): string[] {
  const address = `address:${addressKey(subject.remoteAddress)}`;
  return subject.owner === null ? [address] : [`owner:${subject.owner}`, address];
}

export function quotaError(refusal: QuotaRefusal): QuotaExceededError {
  return new QuotaExceededError(
    `quota ${refusal.quota} reached (limit ${refusal.limit}); retry in ${refusal.retryAfterSeconds} s`,
    { details: `quota: ${refusal.quota}; limit: ${refusal.limit}; retry_after_seconds: ${refusal.retryAfterSeconds}` },
  );
}
