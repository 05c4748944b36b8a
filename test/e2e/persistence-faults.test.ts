import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { spawnServer } from '../kit/spawn-server.js';
import { startWithConversation } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';
import { SqliteSessionStore } from '../../src/store/sqlite-store.js';
import { capturedLogger, rawConnection } from '../store/store-fixtures.js';

// Storage faults as a client and an operator see them: start-up stops with a message naming the path and
// the cause; a write that fails at run time is an `error` STORAGE_ERROR for that event, nothing changes,
// the process keeps serving and health says what happened.

t.test('a data directory that cannot be created stops start-up, naming path and cause', async (t) => {
  const file = join(t.testdir({ 'file.txt': 'a regular file' }), 'file.txt');
  const server = spawnServer({ STT_ENGINE: 'mock', SESSION_PERSISTENCE_DIR: join(file, 'sub') });
  t.teardown(() => server.kill());
  t.equal((await server.exited).code, 1);
  t.match(server.stderr(), `cannot create the session directory ${join(file, 'sub')}`);
  t.match(server.stderr(), /ENOTDIR.*\[STORAGE_ERROR\]/);
  t.notMatch(server.stderr(), /at .*\.ts:\d+/, 'no stack trace');
});

t.test('a corrupt database file stops start-up and is left untouched', async (t) => {
  const garbage = Buffer.from('garbage, not SQLite\n'.repeat(500));
  const dataDir = t.testdir({ 'voxgate.db': garbage });
  const server = spawnServer({ STT_ENGINE: 'mock', SESSION_PERSISTENCE_DIR: dataDir });
  t.teardown(() => server.kill());
  t.equal((await server.exited).code, 1);
  t.match(server.stderr(), `cannot open the session database ${join(dataDir, 'voxgate.db')}`);
  t.match(server.stderr(), /SQLITE_NOTADB.*move it aside.*\[STORAGE_ERROR\]/);
  t.same(readFileSync(join(dataDir, 'voxgate.db')), garbage);
});

t.test('writes failing at run time: STORAGE_ERROR per event, state unchanged, still serving, health shows it', async (t) => {
  const dataDir = t.testdir();
  const store = new SqliteSessionStore({ dir: dataDir, logger: capturedLogger().logger, busyTimeoutMs: 20 });
  const { server, client, sessionId: id } = await startWithConversation(
    t,
    { AUTO_SUGGEST: 'false' },
    { response_count: 3, scenario_description: 'before' },
    { store },
  );
  client.send('user_selected_response', { session_id: id, selected_content: 'kept', sender: 'user' });
  t.equal((await client.next('message_recorded')).data.message_id, 'usr_001');
  await client.next('opinion_prediction_response');

  // Another writer holds the database lock for longer than busy_timeout: every write fails.
  const blocker = rawConnection(t, store.path);
  blocker.exec('BEGIN IMMEDIATE');
  const failing: Array<[string, Record<string, unknown>]> = [
    ['response_count_update', { response_count: 5 }],
    ['scenario_supplement', { supplement: 'after' }],
    ['user_modification', { modification: 'shorter' }],
    ['manual_generate', { focused_message_ids: ['usr_001'] }],
    ['user_selected_response', { selected_content: 'lost', sender: 'user' }],
    ['message_start', { sender: 'other' }],
  ];
  for (const [type, data] of failing) {
    client.send(type, { session_id: id, ...data });
    const reply = await client.next();
    t.match(reply, { type: 'error', data: { session_id: id, error_code: 'STORAGE_ERROR', details: 'sqlite: SQLITE_BUSY' } }, `${type}: error, nothing else`);
  }
  t.notOk(client.pending().length, 'no acknowledgement of any failed event');

  const health = (await (await fetch(`${server.httpUrl}/api/health`)).json()) as Record<string, any>;
  t.match(health.services.session_manager.store, { kind: 'sqlite', status: 'unavailable', path: store.path, last_error: /SQLITE_BUSY/ });
  t.equal((await fetch(`${server.httpUrl}/readyz`)).status, 503, 'not ready while every write fails');

  blocker.exec('ROLLBACK');
  const observer = await TestClient.connect(server.wsUrl());
  t.teardown(() => observer.close());
  observer.send('session_resume', { session_id: id });
  t.match((await observer.next('session_restored')).data, { status: 'idle', message_count: 1, scenario_description: 'before', response_count: 3, has_modifications: false });
  observer.send('get_message_history', { session_id: id });
  t.match((await observer.next('message_history_response')).data.messages, [{ message_id: 'usr_001', content: 'kept' }]);
  t.equal(store.load(id)!.focusedMessageIds.length, 0, 'focus ids not stored');

  const other = await observer.startConversation({ response_count: 1 });
  t.ok(other, 'new sessions work once the lock is gone');
  observer.send('response_count_update', { session_id: id, response_count: 4 });
  observer.send('session_resume', { session_id: id });
  t.match((await observer.next('session_restored')).data, { response_count: 4 }, 'writes work again');
  const after = (await (await fetch(`${server.httpUrl}/api/health`)).json()) as Record<string, any>;
  t.match(after.services.session_manager.store, { status: 'degraded', last_error: /SQLITE_BUSY/ }, 'recovering');
});

t.test('a failed write does not use up a message number', async (t) => {
  const dataDir = t.testdir();
  const store = new SqliteSessionStore({ dir: dataDir, logger: capturedLogger().logger, busyTimeoutMs: 20 });
  const { client, sessionId: id } = await startWithConversation(t, { AUTO_SUGGEST: 'false' }, { response_count: 3 }, { store });
  const blocker = rawConnection(t, store.path);
  blocker.exec('BEGIN IMMEDIATE');
  client.send('user_selected_response', { session_id: id, selected_content: 'lost', sender: 'user' });
  t.match(await client.next(), { type: 'error', data: { error_code: 'STORAGE_ERROR' } });
  blocker.exec('ROLLBACK');
  client.send('user_selected_response', { session_id: id, selected_content: 'kept', sender: 'user' });
  t.equal((await client.next('message_recorded')).data.message_id, 'usr_001', 'number = session messages + 1 (protocol.md)');
});
