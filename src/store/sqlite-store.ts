import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { InternalError, StoreError, VoxgateError } from '../errors.js';
import type { ServiceState } from '../stt/engine.js';
import { migrate } from './migrations/index.js';
import { prepareStatements, prepareTransactions, type Statements, type Transactions } from './sqlite-statements.js';
import type {
  SessionRecord,
  SessionSettingsPatch,
  SessionStore,
  StoredMessage,
  StoreHealth,
} from './session-store.js';

/** The database file inside SESSION_PERSISTENCE_DIR. */
export const DATABASE_FILE_NAME = 'voxgate.db';

export interface SqliteSessionStoreOptions {
  /** SESSION_PERSISTENCE_DIR: created if missing; holds voxgate.db and its -wal/-shm files. */
  dir: string;
  logger: Logger;
  /**
   * NORMAL (default): a commit is in the WAL file, handed to the OS, before the method returns, so it
   * survives a crash or SIGKILL of this process; an OS crash or power loss may roll back the last
   * commits (the file stays consistent). FULL also fsyncs the WAL on every commit (survives power loss;
   * see bench/README.md for what it costs).
   */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long a write waits for a lock held by another connection before failing (SQLITE_BUSY). */
  busyTimeoutMs?: number;
}

// A failure or two may be a passing condition (a lock held a moment too long); this many in a row and the
// store is treated as unusable, so /readyz sends traffic elsewhere.
const UNAVAILABLE_AFTER_FAILURES = 3;
// After a failure, this many successful writes in a row before the store reports healthy again: one
// success may be luck (a write that fit in the last free page of a full disk).
const HEALTHY_AFTER_SUCCESSES = 5;
const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
// The WAL is reset at each checkpoint; this bounds the file it leaves behind after a burst of writes.
const JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;


/**
 * Sessions in an SQLite file (WAL mode): every method is one transaction that has committed when it
 * returns, so the caller may acknowledge right after, and a process crash loses nothing acknowledged.
 * SQLite failures (disk full, read-only file, lock timeout, corruption) become StoreError with the SQLite
 * error as `cause` and its code in `details`; the store stays usable and reports its state in health().
 * One process per directory: sessions also live in that process's memory.
 */
export class SqliteSessionStore implements SessionStore {
  readonly kind = 'sqlite' as const;
  /** The database file. */
  readonly path: string;
  readonly #log: Logger;
  #db: Database.Database | null;
  readonly #statements: Statements;
  readonly #transactions: Transactions;
  #consecutiveFailures = 0;
  #successesSinceFailure = HEALTHY_AFTER_SUCCESSES;
  #lastError: string | null = null;

  /** Opens (creating and migrating as needed) `<dir>/voxgate.db`; throws StoreError naming the path and cause. */
  constructor(options: SqliteSessionStoreOptions) {
    const dir = resolve(options.dir);
    this.path = join(dir, DATABASE_FILE_NAME);
    this.#log = options.logger.child({ component: 'store' });
    try {
      createDirectory(dir);
    } catch (err) {
      throw new StoreError(`cannot create the session directory ${dir}: ${messageOf(err)}`, {
        details: `path: ${dir}; code: ${codeOf(err)}`,
        cause: err,
      });
    }
    let db: Database.Database | null = null;
    try {
      refuseEmptyFile(this.path);
      db = new Database(this.path);
      const journalMode = db.pragma('journal_mode = WAL', { simple: true });
      if (journalMode !== 'wal') throw new Error(`journal_mode is ${String(journalMode)}, WAL could not be enabled`);
      db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
      db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS}`);
      db.pragma('foreign_keys = ON');
      db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES}`);
      // A damaged file is refused at start-up, never repaired or replaced: the operator decides
      // (docs/persistence.md). quick_check reads every page once: milliseconds for a session store.
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw Object.assign(new Error(`integrity check failed: ${String(check)}`), { code: 'SQLITE_CORRUPT' });
      const migration = migrate(db);
      for (const step of migration.applied) this.#log.info({ version: step.version, step: step.name }, 'session database migrated');
      this.#statements = prepareStatements(db);
      this.#db = db;
      this.#transactions = prepareTransactions(db, this.#statements);
      this.#log.info(
        { path: this.path, schemaVersion: migration.toVersion, synchronous: options.synchronous ?? 'NORMAL', sessions: this.#count() },
        'session store opened',
      );
    } catch (err) {
      db?.close();
      if (err instanceof StoreError) {
        throw new StoreError(`cannot open the session database ${this.path}: ${err.message}`, { details: err.details, cause: err });
      }
      const code = codeOf(err);
      const advice = code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || code === EMPTY_DATABASE_FILE
        ? '; the file was left untouched: restore a backup or move it aside to start without stored sessions (docs/persistence.md)'
        : '';
      throw new StoreError(`cannot open the session database ${this.path}: ${messageOf(err)} (${code})${advice}`, {
        details: `path: ${this.path}; sqlite: ${code}`,
        cause: err,
      });
    }
  }

  create(record: SessionRecord): void {
    this.#write('create', record.id, () => this.#transactions.create(record));
  }

  load(sessionId: string): SessionRecord | null {
    return this.#run('load', sessionId, () => this.#transactions.load(sessionId), { isWrite: false });
  }

  update(sessionId: string, patch: SessionSettingsPatch, updatedAt: string): void {
    this.#write('update', sessionId, () => this.#transactions.update(sessionId, patch, updatedAt));
  }

  appendMessage(sessionId: string, message: StoredMessage, updatedAt: string): void {
    this.#write('append a message to', sessionId, () => this.#transactions.appendMessage(sessionId, message, updatedAt));
  }

  finishRecording(sessionId: string, message: StoredMessage, updatedAt: string): void {
    this.#write('finish the recording of', sessionId, () => this.#transactions.finishRecording(sessionId, message, updatedAt));
  }

  appendModification(sessionId: string, modification: string, updatedAt: string): void {
    this.#write('append a modification to', sessionId, () => this.#transactions.appendModification(sessionId, modification, updatedAt));
  }

  appendRecordingSegment(sessionId: string, text: string, updatedAt: string): void {
    this.#write('append a recording segment to', sessionId, () => this.#transactions.appendRecordingSegment(sessionId, text, updatedAt));
  }

  delete(sessionId: string): boolean {
    return this.#write('delete', sessionId, () => this.#statements.deleteSession.run(sessionId).changes > 0);
  }

  deleteExpired(before: string): string[] {
    return this.#write('delete expired', null, () => this.#statements.deleteExpired.all(before).map((row) => row.id));
  }

  health(): StoreHealth {
    let sessions = 0;
    let status = this.#status();
    let lastError = this.#lastError;
    if (this.#db === null) {
      return { kind: 'sqlite', status: 'unavailable', path: this.path, sessions: 0, lastError: 'the session store is closed' };
    }
    try {
      sessions = this.#count();
    } catch (err) {
      status = 'unavailable';
      lastError = `cannot read the session database: ${messageOf(err)} (${codeOf(err)})`;
    }
    return { kind: 'sqlite', status, path: this.path, sessions, lastError };
  }

  sizeBytes(): number {
    return this.#run('measure', null, () => this.#statements.usedBytes.get()!.bytes, { isWrite: false });
  }

  /** Closes the database (SQLite checkpoints the WAL into the main file). A second call does nothing. */
  close(): void {
    const db = this.#db;
    if (db === null) return;
    this.#db = null;
    db.close();
    this.#log.info({ path: this.path }, 'session store closed');
  }

  #write<T>(operation: string, sessionId: string | null, work: () => T): T {
    return this.#run(operation, sessionId, work, { isWrite: true });
  }

  /**
   * Runs one store operation. Our own errors (unknown session, unserialisable data) pass through and say
   * nothing about the disk; SQLite's failures are wrapped, counted for health, logged on state changes.
   */
  #run<T>(operation: string, sessionId: string | null, work: () => T, options: { isWrite: boolean }): T {
    if (this.#db === null) throw new StoreError('the session store is closed', { details: `path: ${this.path}` });
    let result: T;
    try {
      result = work();
    } catch (err) {
      // Our own typed errors (unknown session, data that cannot be serialised) say nothing about the disk.
      if (err instanceof VoxgateError) throw err;
      // Only SQLite's own failures count against health: anything else thrown here is a bug of ours or
      // data SQLite was never given, and a disk that is fine must not be reported unavailable for it.
      if (!(err instanceof Database.SqliteError)) {
        throw new InternalError(`could not ${operation} ${sessionId === null ? 'sessions' : `session ${sessionId}`}: ${messageOf(err)}`, { cause: err });
      }
      const code = codeOf(err);
      const target = sessionId === null ? 'sessions' : `session ${sessionId}`;
      const error = new StoreError(`could not ${operation} ${target}: ${messageOf(err)}`, { details: `sqlite: ${code}`, cause: err });
      this.#onFailure(error, code);
      throw error;
    }
    if (options.isWrite) this.#onWriteSuccess();
    return result;
  }

  #onFailure(error: StoreError, code: string): void {
    const before = this.#status();
    this.#consecutiveFailures++;
    this.#successesSinceFailure = 0;
    this.#lastError = `${new Date().toISOString()} ${error.message} (${code})`;
    const after = this.#status();
    if (after !== before) this.#log.error({ err: error, code, path: this.path, status: after }, 'session store writes are failing');
  }

  #onWriteSuccess(): void {
    if (this.#consecutiveFailures === 0 && this.#successesSinceFailure >= HEALTHY_AFTER_SUCCESSES) return;
    const before = this.#status();
    this.#consecutiveFailures = 0;
    this.#successesSinceFailure++;
    const after = this.#status();
    if (after === 'healthy') this.#log.info({ path: this.path, lastError: this.#lastError }, 'session store recovered: writes succeed again');
    else if (after !== before) this.#log.warn({ path: this.path, status: after }, 'session store recovering: a write succeeded');
  }

  /** unavailable: the last writes all failed; degraded: a write failed recently; healthy otherwise. */
  #status(): ServiceState {
    if (this.#consecutiveFailures >= UNAVAILABLE_AFTER_FAILURES) return 'unavailable';
    if (this.#consecutiveFailures > 0 || this.#successesSinceFailure < HEALTHY_AFTER_SUCCESSES) return 'degraded';
    return 'healthy';
  }

  #count(): number {
    return this.#statements.countSessions.get()!.count;
  }
}

const EMPTY_DATABASE_FILE = 'EMPTY_DATABASE_FILE';

/**
 * An existing voxgate.db of 0 bytes is damage (a truncated copy, a failed restore), not a new database:
 * SQLite would open it as an empty database, and reset a -wal found next to it, so every stored session
 * would be gone without a word. voxgate itself never leaves one behind except when killed between
 * creating the file and its first write (microseconds); then deleting it is the fix, and the message says so.
 */
function refuseEmptyFile(path: string): void {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return; // a new database
    throw err;
  }
  if (size > 0) return;
  throw Object.assign(
    new Error('the file is empty (0 bytes), not a database; if it never held sessions, delete it (and any -wal/-shm) to start fresh'),
    { code: EMPTY_DATABASE_FILE },
  );
}

/**
 * mkdir -p, with the real reason: Node's recursive mkdir reports ENOENT for a directory on a read-only
 * file system, so a failure is retried without `recursive` to get EROFS / EACCES / ENOTDIR.
 */
function createDirectory(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    if (codeOf(err) !== 'ENOENT' || !existsSync(dirname(dir))) throw err;
    mkdirSync(dir);
  }
}


/** SQLite's extended code (SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR_WRITE...) or Node's (ENOTDIR). */
function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
