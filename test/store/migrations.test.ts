import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, migrate } from '../../src/store/migrations/index.js';
import { SqliteSessionStore } from '../../src/store/sqlite-store.js';
import { capturedLogger, fullRecord, openStore, rawConnection } from './store-fixtures.js';

t.test('versions are 1..N without gaps and a new file gets the latest', async (t) => {
  t.same(MIGRATIONS.map((m) => m.version), Array.from({ length: MIGRATIONS.length }, (_, i) => i + 1));
  const store = openStore(t);
  const raw = rawConnection(t, store.path);
  t.equal(raw.pragma('user_version', { simple: true }), LATEST_SCHEMA_VERSION);
});

t.test('a version 1 database with sessions is migrated on open, its sessions intact', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'voxgate.db');
  // A database as the first release left it: schema 1, written without the store (its SQL by hand).
  const old = new Database(path);
  old.pragma('journal_mode = WAL');
  t.same(migrate(old, 1), { fromVersion: 0, toVersion: 1, applied: [{ version: 1, name: 'initial schema' }] });
  old.prepare(`INSERT INTO sessions VALUES ('old', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:01.000Z', 'scene', 2, '{"name":"A"}', NULL, '["h-1"]')`).run();
  old.prepare(`INSERT INTO messages VALUES ('old', 'history', 1, 'h-1', 'other', 'hello', '2025-01-01T00:00:00.000Z', 'history')`).run();
  const insertSessionMessage = old.prepare(`INSERT INTO messages VALUES ('old', 'session', ?, ?, 'user', ?, '2025-01-01T00:00:02.000Z', 'selected_response')`);
  for (let seq = 1; seq <= 300; seq++) insertSessionMessage.run(seq, `usr_${seq}`, '长'.repeat(seq * 7));
  old.prepare(`INSERT INTO recordings VALUES ('old', 'msg_001', 'other', '2025-01-01T00:00:01.000Z')`).run();
  old.prepare(`INSERT INTO recording_segments VALUES ('old', 1, 'alpha')`).run();
  old.close();

  const { logger, lines } = capturedLogger();
  const store = openStore(t, { dir, logger });
  const raw = rawConnection(t, path);
  t.equal(raw.pragma('user_version', { simple: true }), LATEST_SCHEMA_VERSION);
  t.ok(raw.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'sessions_by_updated_at'`).get(), 'index of step 2 exists');
  t.notMatch(
    (raw.prepare(`SELECT sql FROM sqlite_master WHERE name = 'messages'`).get() as { sql: string }).sql,
    /WITHOUT ROWID/,
    'step 3: messages in a rowid table',
  );
  t.same(
    lines.filter((line) => line.msg === 'session database migrated').map((line) => line.version),
    [2, 3, 4],
    'each step is logged',
  );
  const migrated = store.load('old')!;
  t.equal(migrated.messages.length, 300);
  t.ok(migrated.messages.every((message, i) => message.messageId === `usr_${i + 1}` && message.content === '长'.repeat((i + 1) * 7)), 'every message, in order');
  t.throws(() => raw.prepare(`INSERT INTO messages VALUES ('old', 'session', 1, 'dup', 'user', 'x', 'now', 'recording')`).run(), { code: 'SQLITE_CONSTRAINT_UNIQUE' }, 'positions stay unique');
  store.appendMessage('old', { messageId: 'usr_301', sender: 'user', content: 'next', createdAt: '2025-01-01T00:00:03.000Z', type: 'selected_response' }, '2025-01-01T00:00:03.000Z');
  t.equal(store.load('old')!.messages.at(-1)!.messageId, 'usr_301', 'appends after the migrated messages');

  t.match(store.load('old'), {
    scenarioDescription: 'scene',
    responseCount: 2,
    userProfile: { name: 'A' },
    targetProfile: null,
    historyMessages: [{ messageId: 'h-1', content: 'hello', type: 'history' }],
    focusedMessageIds: ['h-1'],
    recording: { messageId: 'msg_001', segments: ['alpha'] },
    owner: null,
  });
  store.create(fullRecord('new'));
  t.same(store.deleteExpired('2025-01-02T00:00:00.000Z'), ['old'], 'the migrated schema works for the sweep');
  t.equal((raw.prepare(`SELECT COUNT(*) AS n FROM messages WHERE session_id = 'old'`).get() as { n: number }).n, 0, 'deleting the session deletes its messages (ON DELETE CASCADE kept)');
});

t.test('migrating twice (or from two processes) applies each step once', async (t) => {
  const dir = t.testdir();
  const a = openStore(t, { dir });
  const b = openStore(t, { dir });
  a.create(fullRecord('s'));
  t.same(b.load('s'), fullRecord('s'));
  const raw = rawConnection(t, a.path);
  t.same(migrate(raw), { fromVersion: LATEST_SCHEMA_VERSION, toVersion: LATEST_SCHEMA_VERSION, applied: [] });
});

t.test('a database from a newer voxgate is refused, untouched', async (t) => {
  const dir = t.testdir();
  const newer = new Database(join(dir, 'voxgate.db'));
  newer.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 1}`);
  newer.close();
  const err = t.throws(() => new SqliteSessionStore({ dir, logger: capturedLogger().logger })) as Error & { code: string; details: string };
  t.equal(err.code, 'STORAGE_ERROR');
  t.match(err.message, `schema version ${LATEST_SCHEMA_VERSION + 1}, newer than this voxgate supports (${LATEST_SCHEMA_VERSION})`);
  t.match(err.message, join(dir, 'voxgate.db'));
  t.equal(err.details, `schema_version: ${LATEST_SCHEMA_VERSION + 1}`);
  const raw = rawConnection(t, join(dir, 'voxgate.db'));
  t.equal(raw.pragma('user_version', { simple: true }), LATEST_SCHEMA_VERSION + 1);
});
