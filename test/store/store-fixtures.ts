// Helpers for the store tests: a full SessionRecord, a logger whose lines can be asserted on, and a
// raw connection to a store's database file (a second SQLite connection, as another process would have).
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { pino, type Logger } from 'pino';
import type { Test } from 'tap';
import type { SessionRecord } from '../../src/store/session-store.js';
import { SqliteSessionStore, type SqliteSessionStoreOptions } from '../../src/store/sqlite-store.js';

export interface CapturedLogger {
  logger: Logger;
  lines: Array<Record<string, unknown>>;
}

export function capturedLogger(): CapturedLogger {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/** Opens a store in `dir` (a fresh test directory by default), closed at teardown. */
export function openStore(t: Test, options: Partial<SqliteSessionStoreOptions> = {}): SqliteSessionStore {
  // Only ask for a test directory when none is given: t.testdir() empties the test's directory.
  const store = new SqliteSessionStore({ logger: capturedLogger().logger, ...options, dir: options.dir ?? t.testdir() });
  t.teardown(() => store.close());
  return store;
}

/** A second connection to the store's file, closed at teardown. */
export function rawConnection(t: Test, path: string, options: Database.Options = {}): Database.Database {
  const db = new Database(path, options);
  t.teardown(() => {
    if (db.open) db.close();
  });
  return db;
}

/** A session with something in every field, including text a naive encoder would break. */
export function fullRecord(id: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id,
    createdAt: '2025-01-02T03:04:05.006Z',
    updatedAt: '2025-01-02T03:04:05.006Z',
    owner: 'sub:alice',
    scenarioDescription: '在咖啡店点单 "quotes" \\ and \'apostrophes\'',
    responseCount: 4,
    // Unknown keys, nesting, numbers and key order as a client might send them: kept exactly.
    userProfile: { name: '小明', age: 31, gender: 'male', relations: ['friend'], personalities: [], extra: { nested: [1, 2.5, null, true] } },
    targetProfile: { common_topics: ['天气', 'weather'], name: 'Barista', zeta: 1, alpha: 2 },
    historyMessages: [
      { messageId: 'h-1', sender: 'other', content: '你好', createdAt: '2025-01-02T03:04:05.006Z', type: 'history' },
      { messageId: 'h-2', sender: 'user', content: 'hi 👋\nsecond line', createdAt: '2025-01-02T03:04:05.006Z', type: 'history' },
    ],
    messages: [
      { messageId: 'msg_001', sender: 'other', content: 'alpha bravo', createdAt: '2025-01-02T03:05:00.000Z', type: 'recording' },
      { messageId: 'usr_002', sender: 'user', content: '好的', createdAt: '2025-01-02T03:05:01.000Z', type: 'selected_response' },
    ],
    focusedMessageIds: ['h-2', 'msg_001'],
    modifications: ['more polite', '更短一点'],
    recording: { messageId: 'msg_003', sender: 'other', segments: ['charlie', 'delta'], startedAt: '2025-01-02T03:06:00.000Z' },
    ...overrides,
  };
}
