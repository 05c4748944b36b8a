import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort, type WorkerOptions } from 'node:worker_threads';
import type { Logger } from 'pino';
import {
  InternalError,
  SessionBusyElsewhereError,
  SessionMovedError,
  StoreError,
  StoreUnavailableError,
  type VoxgateError,
} from '../errors.js';
import type { ServiceState } from '../stt/engine.js';
import type { AcquireOutcome, AsyncRequest, RedisWorkerData, SyncReply, SyncRequest, WorkerNotice } from './redis-messages.js';
import type { SessionRecord, SessionSettingsPatch, SessionStore, StoredMessage, StoreHealth } from './session-store.js';

export interface RedisSessionStoreOptions {
  /** REDIS_URL, e.g. redis://127.0.0.1:6379/0 */
  url: string;
  /** REDIS_KEY_PREFIX: every key starts with it (several deployments, or test runs, may share a Redis). */
  prefix: string;
  /** NODE_ID: this node's name in leases, the registry and handover channels. */
  nodeId: string;
  /** REDIS_LEASE_MS: how long a session stays this node's after its last renewal (renewed every leaseMs/3). */
  leaseMs: number;
  /** Redis TTL of a session's keys, renewed by each write: SESSION_MAX_PERSISTENCE_HOURS. */
  ttlMs: number;
  /** REDIS_COMMAND_TIMEOUT_MS: a store call that gets no answer sooner fails with STORE_UNAVAILABLE. */
  commandTimeoutMs: number;
  /** REDIS_HANDOVER_TIMEOUT_MS: how long acquire() waits for another node to hand a session over. */
  handoverTimeoutMs: number;
  /** How long the constructor waits for the first connection (the store starts either way). */
  connectWaitMs?: number;
  logger: Logger;
}

export interface RedisStoreEvents {
  /** Another node took a session this node held (its lease renewal or a write was fenced). */
  onLeaseLost?(sessionId: string): void;
  /** Another node asks for a session this node holds: hand it over (park, detach, release). */
  onReleaseRequested?(sessionId: string, by: string): void;
}

// Compiled code lives in dist/src/store; under tsx the worker is the .ts file next to this one.
const WORKER_FILE = new URL(`./redis-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
const DEFAULT_CONNECT_WAIT_MS = 5_000;
// A failure or two may be a passing condition; this many in a row and the store reports unavailable.
const UNAVAILABLE_AFTER_FAILURES = 3;

/**
 * Sessions in Redis, shared by every voxgate node (docs/scaling.md). The SessionStore contract is
 * synchronous, as better-sqlite3 is: each call is sent to the store's worker thread, which runs it on
 * Redis, and this thread waits on Atomics for the reply (a loopback round trip: bench/README.md gives
 * the figure). A call returns only after Redis executed it, so write-before-acknowledge holds; how
 * durable that is depends on Redis's AOF setting (docs/scaling.md#durability).
 *
 * Each session is held by one node at a time, through a lease (`<nodeId>:<epoch>`, PX) that the worker
 * renews. Every write checks the session's epoch in the same Lua script that writes: a node that lost
 * the session (paused past its lease, or handed it over) gets SESSION_MOVED and nothing is written.
 *
 * Redis unreachable: calls fail at once with STORE_UNAVAILABLE (no offline queue), health() reports
 * unavailable (so /readyz turns 503), and the connection is retried every second at most.
 */
export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis' as const;
  readonly nodeId: string;
  readonly #options: RedisSessionStoreOptions;
  readonly #log: Logger;
  readonly #worker: Worker;
  readonly #signal: Int32Array;
  readonly #syncPort: MessagePort;
  readonly #asyncPort: MessagePort;
  readonly #waitingAcquires = new Map<number, (outcome: AcquireOutcome) => void>();
  #events: RedisStoreEvents = {};
  #nextId = 1;
  #connected = false;
  #connectionError: string | null = 'not connected yet';
  #consecutiveFailures = 0;
  #lastError: string | null = null;
  #sessions = 0;
  #usedBytes = 0;
  #closed = false;
  #workerGone = false;

  constructor(options: RedisSessionStoreOptions) {
    this.#options = options;
    this.nodeId = options.nodeId;
    this.#log = options.logger.child({ component: 'store', store: 'redis' });
    const signal = new SharedArrayBuffer(4);
    this.#signal = new Int32Array(signal);
    const sync = new MessageChannel();
    const notices = new MessageChannel();
    this.#syncPort = sync.port1;
    this.#asyncPort = notices.port1;
    const workerData: RedisWorkerData = {
      url: options.url,
      prefix: options.prefix,
      nodeId: options.nodeId,
      leaseMs: options.leaseMs,
      ttlMs: options.ttlMs,
      commandTimeoutMs: options.commandTimeoutMs,
      handoverTimeoutMs: options.handoverTimeoutMs,
      signal,
      syncPort: sync.port2,
      asyncPort: notices.port2,
    };
    this.#worker = startWorker({ workerData, transferList: [sync.port2, notices.port2] });
    this.#worker.unref();
    this.#worker.on('error', (err) => this.#log.error({ err }, 'redis store thread failed'));
    // Without its thread the store cannot work: report it (readyz 503) and fail calls at once.
    this.#worker.on('exit', (code) => {
      if (this.#closed) return;
      this.#workerGone = true;
      this.#connected = false;
      this.#connectionError = `the Redis store thread exited (code ${code})`;
      this.#log.error({ code }, 'redis store thread exited; the session store is unavailable');
    });
    this.#asyncPort.on('message', (notice: WorkerNotice) => this.#onNotice(notice));
    this.#asyncPort.unref();
    const waitMs = options.connectWaitMs ?? DEFAULT_CONNECT_WAIT_MS;
    const connected = this.#call({ id: 0, op: 'ping', waitMs }, waitMs + 1_000) === true;
    this.#connected = connected;
    if (connected) {
      this.#connectionError = null;
      this.#log.info({ url: redactUrl(options.url), nodeId: options.nodeId, leaseMs: options.leaseMs }, 'session store opened (Redis)');
    } else {
      // Start anyway: /readyz stays 503 and new sessions are refused until Redis answers.
      this.#log.error({ url: redactUrl(options.url), waitedMs: waitMs }, 'Redis is not reachable; new sessions are refused until it is');
    }
  }

  /** Where lease losses and handover requests go (the app wires them to the dialogue). */
  setEvents(events: RedisStoreEvents): void {
    this.#events = events;
  }

  create(record: SessionRecord): void {
    this.#call({ id: 0, op: 'create', record });
    this.#sessions++;
  }

  load(sessionId: string): SessionRecord | null {
    return this.#call({ id: 0, op: 'load', sessionId }) as SessionRecord | null;
  }

  update(sessionId: string, patch: SessionSettingsPatch, updatedAt: string): void {
    this.#call({ id: 0, op: 'update', sessionId, patch, updatedAt });
  }

  appendMessage(sessionId: string, message: StoredMessage, updatedAt: string): void {
    this.#call({ id: 0, op: 'appendMessage', sessionId, message, updatedAt });
  }

  finishRecording(sessionId: string, message: StoredMessage, updatedAt: string): void {
    this.#call({ id: 0, op: 'finishRecording', sessionId, message, updatedAt });
  }

  appendModification(sessionId: string, modification: string, updatedAt: string): void {
    this.#call({ id: 0, op: 'appendModification', sessionId, text: modification, updatedAt });
  }

  appendRecordingSegment(sessionId: string, text: string, updatedAt: string): void {
    this.#call({ id: 0, op: 'appendRecordingSegment', sessionId, text, updatedAt });
  }

  delete(sessionId: string): boolean {
    const deleted = this.#call({ id: 0, op: 'delete', sessionId }) === true;
    if (deleted) this.#sessions = Math.max(0, this.#sessions - 1);
    return deleted;
  }

  /** Redis expires a session's keys itself (TTL); this trims the index and returns the ids it dropped. */
  deleteExpired(before: string): string[] {
    const ids = this.#call({ id: 0, op: 'deleteExpired', before }) as string[];
    this.#sessions = Math.max(0, this.#sessions - ids.length);
    return ids;
  }

  /**
   * Takes the session for this node without blocking this thread: at once when no node holds it;
   * with `handover`, otherwise after the holder handed it over, or its lease expired (it died), and
   * `busy` after REDIS_HANDOVER_TIMEOUT_MS; without, `busy` at once. `unavailable` when Redis cannot be
   * reached.
   */
  acquire(sessionId: string, options: { handover: boolean }): Promise<AcquireOutcome> {
    if (this.#closed) return Promise.resolve('unavailable');
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#waitingAcquires.set(id, resolve);
      this.#post({ id, op: 'acquire', sessionId, handover: options.handover });
    });
  }

  /** Gives the session's lease up (the session left this node's memory); another node may take it at once. */
  release(sessionId: string): void {
    if (!this.#closed) this.#post({ op: 'release', sessionId });
  }

  health(): StoreHealth {
    return { kind: 'redis', status: this.#status(), path: redactUrl(this.#options.url), sessions: this.#sessions, lastError: this.#connectionError ?? this.#lastError };
  }

  /** Redis's used_memory (all of this Redis, not only voxgate's keys), refreshed every 2 s. */
  sizeBytes(): number {
    return this.#usedBytes;
  }

  /** Releases every lease this node holds and closes the connections. A second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#call({ id: 0, op: 'close' });
    } catch (err) {
      this.#log.warn({ err }, 'could not release leases on close; they expire by themselves');
    }
    for (const resolve of this.#waitingAcquires.values()) resolve('unavailable');
    this.#waitingAcquires.clear();
    this.#asyncPort.close();
    void this.#worker.terminate();
    this.#log.info('session store closed (Redis)');
  }

  #post(request: AsyncRequest): void {
    this.#asyncPort.postMessage(request);
  }

  /** One store call: sent to the worker, this thread waits (Atomics) for its reply. */
  #call(request: SyncRequest, timeoutMs = this.#options.commandTimeoutMs * 2 + 100): unknown {
    if (this.#closed && request.op !== 'close') throw new StoreError('the session store is closed');
    if (this.#workerGone) throw new StoreUnavailableError('the Redis store thread is gone', { details: 'redis: no store thread' });
    const id = this.#nextId++;
    this.#syncPort.postMessage({ ...request, id });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seen = Atomics.load(this.#signal, 0);
      const received = receiveMessageOnPort(this.#syncPort) as { message: SyncReply } | undefined;
      if (received !== undefined) {
        // A reply to an earlier call that timed out arrives late: dropped (that call was already failed).
        if (received.message.id !== id) continue;
        return this.#settle(request, received.message);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const error = new StoreUnavailableError(`Redis did not answer ${request.op} within ${timeoutMs} ms`, { details: 'redis: timeout' });
        this.#onFailure(error);
        throw error;
      }
      Atomics.wait(this.#signal, 0, seen, left);
    }
  }

  #settle(request: SyncRequest, reply: SyncReply): unknown {
    if (reply.ok) {
      this.#consecutiveFailures = 0;
      return reply.value;
    }
    const sessionId = 'sessionId' in request ? request.sessionId : 'record' in request ? request.record.id : null;
    const target = sessionId === null ? 'sessions' : `session ${sessionId}`;
    let error: VoxgateError;
    switch (reply.failure) {
      case 'fenced':
        error = new SessionMovedError(`another node now holds ${target}; nothing was written`, { details: `redis: ${reply.message}` });
        if (sessionId !== null) queueMicrotask(() => this.#events.onLeaseLost?.(sessionId));
        return this.#throw(error, false);
      case 'busy':
        return this.#throw(new SessionBusyElsewhereError(`${target} is held by another node`, { details: reply.message }), false);
      case 'unavailable':
        return this.#throw(new StoreUnavailableError(`Redis is not reachable: ${reply.message}`, { details: 'redis: unavailable' }), true);
      case 'missing':
      case 'exists':
      case 'not-recording':
        return this.#throw(new StoreError(`${target}: ${reply.message}`, { details: `redis: ${reply.failure}` }), false);
      case 'internal':
        return this.#throw(new InternalError(`Redis refused a store call on ${target}: ${reply.message}`), true);
    }
  }

  #throw(error: VoxgateError, countsAgainstHealth: boolean): never {
    if (countsAgainstHealth) this.#onFailure(error);
    throw error;
  }

  #onFailure(error: VoxgateError): void {
    const before = this.#status();
    this.#consecutiveFailures++;
    this.#lastError = `${new Date().toISOString()} ${error.message}`;
    const after = this.#status();
    if (after !== before) this.#log.error({ err: error, code: error.code, status: after }, 'session store calls are failing');
  }

  #status(): ServiceState {
    if (this.#closed || !this.#connected || this.#consecutiveFailures >= UNAVAILABLE_AFTER_FAILURES) return 'unavailable';
    if (this.#consecutiveFailures > 0) return 'degraded';
    return 'healthy';
  }

  #onNotice(notice: WorkerNotice): void {
    switch (notice.type) {
      case 'reply': {
        const resolve = this.#waitingAcquires.get(notice.id);
        this.#waitingAcquires.delete(notice.id);
        resolve?.(notice.outcome ?? 'unavailable');
        return;
      }
      case 'connection':
        if ((notice.state === 'ready') === this.#connected) return;
        this.#connected = notice.state === 'ready';
        this.#connectionError = notice.error;
        if (this.#connected) {
          this.#consecutiveFailures = 0;
          this.#log.info('Redis reachable again: the session store works');
        } else {
          this.#log.error({ error: notice.error }, 'Redis connection lost: new sessions are refused until it is back');
        }
        return;
      case 'stats':
        this.#sessions = notice.sessions;
        this.#usedBytes = notice.usedBytes;
        return;
      case 'lost':
        this.#log.warn({ sessionId: notice.sessionId }, 'session lease lost: another node took the session');
        this.#events.onLeaseLost?.(notice.sessionId);
        return;
      case 'release-requested':
        this.#log.info({ sessionId: notice.sessionId, by: notice.by }, 'handover requested by another node');
        this.#events.onReleaseRequested?.(notice.sessionId, notice.by);
        return;
    }
  }
}

/**
 * Runs redis-worker. Compiled, it is a .js file Node loads itself; under tsx (dev, tests) the worker
 * thread does not inherit tsx's loader for its entry file, so a one-line entry registers tsx first.
 */
function startWorker(options: WorkerOptions): Worker {
  if (!WORKER_FILE.pathname.endsWith('.ts')) return new Worker(WORKER_FILE, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_FILE.href)}); })`;
  return new Worker(entry, { ...options, eval: true });
}

/** The URL without its password, for logs and /api/health. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '[unparseable REDIS_URL]';
  }
}
