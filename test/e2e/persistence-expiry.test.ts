import { join } from 'node:path';
import t from 'tap';
import { rawConnection } from '../store/store-fixtures.js';
import { startOn } from '../store/persistence-kit.js';

// Sessions leave the data directory two ways: the clean-up sweep (untouched for
// SESSION_MAX_PERSISTENCE_HOURS) and conversation_end. Both are logged; neither comes back after a restart.

t.test('an untouched session is swept from the file after its lifetime, and logged', async (t) => {
  const dataDir = t.testdir();
  // 0.0003 h = 1.08 s lifetime, swept every 0.005 min = 0.3 s.
  const running = await startOn(t, dataDir, { SESSION_MAX_PERSISTENCE_HOURS: '0.0003', SESSION_CLEANUP_INTERVAL_MINUTES: '0.005' });
  const client = await running.connect();
  const sessionId = await client.startConversation({ response_count: 2 });
  await client.close();
  const line = await running.logLine((entry) => entry.msg === 'session deleted' && entry.sessionId === sessionId);
  t.equal(line.reason, 'expired');
  const db = rawConnection(t, join(dataDir, 'voxgate.db'), { readonly: true });
  t.same(db.prepare('SELECT id FROM sessions WHERE id = ?').all(sessionId), [], 'not in the file');
  const late = await running.connect();
  late.send('session_resume', { session_id: sessionId });
  t.match(await late.next('error'), { data: { error_code: 'SESSION_NOT_FOUND' } });
});

t.test('conversation_end deletes the session from the file; a restart does not bring it back', async (t) => {
  const dataDir = t.testdir();
  const first = await startOn(t, dataDir);
  const client = await first.connect();
  const ended = await client.startConversation({ response_count: 2, user_profile: { name: 'U' } });
  const kept = await client.startConversation({ response_count: 3 });
  client.send('conversation_end', { session_id: ended });
  t.same((await client.next('profile_archive')).data, { session_id: ended, user_profile: { name: 'U' }, target_profile: null });
  t.equal((await first.logLine((entry) => entry.msg === 'session deleted' && entry.sessionId === ended)).reason, 'conversation_end');
  const db = rawConnection(t, join(dataDir, 'voxgate.db'), { readonly: true });
  t.same(db.prepare('SELECT id FROM sessions').all(), [{ id: kept }], 'only the other session is left');
  db.close();

  first.server.kill('SIGTERM');
  t.equal((await first.server.exited).code, 0);
  const second = await startOn(t, dataDir);
  const again = await second.connect();
  again.send('session_resume', { session_id: ended });
  t.match(await again.next(), { type: 'error', data: { error_code: 'SESSION_NOT_FOUND' } });
  again.send('session_resume', { session_id: kept });
  t.match(await again.next(), { type: 'session_restored', data: { session_id: kept, response_count: 3 } }, 'after a clean shutdown too');
});
