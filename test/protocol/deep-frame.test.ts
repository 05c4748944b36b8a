import t from 'tap';
import { startTestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

// Issue 12 #2: a conversation_start whose user_profile carries 20,000 nested arrays (a 40 KB frame) used
// to overflow the stack inside the store: STORAGE_ERROR, counted as a disk failure, and after three the
// store said `unavailable` and /readyz 503. Now it is refused at the edge as bad input, every time, and
// the store and readiness never notice.

t.test('20,000-deep frames get INVALID_EVENT_DATA and /readyz stays 200 with the SQLite store', async (t) => {
  const server = await startTestServer({ SESSION_PERSISTENCE_ENABLED: 'true', SESSION_PERSISTENCE_DIR: t.testdir(), AUTO_SUGGEST: 'false' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());

  const depth = 20_000;
  const deep = `{"type":"conversation_start","data":{"response_count":3,"user_profile":{"name":"a","x":${'['.repeat(depth)}${']'.repeat(depth)}}}}`;
  t.ok(deep.length < 41_000, 'a 40 KB frame');
  for (let i = 0; i < 10; i++) {
    client.sendRaw(deep);
    t.match((await client.next()).data, { session_id: null, error_code: 'INVALID_EVENT_DATA', details: 'max_json_depth: 32' }, `frame ${i + 1}`);
    const ready = await fetch(`${server.httpUrl}/readyz`);
    t.equal(ready.status, 200, `ready after frame ${i + 1}`);
  }
  const health = (await (await fetch(`${server.httpUrl}/api/health`)).json()) as { services: { session_manager: { store: Record<string, unknown> } } };
  t.match(health.services.session_manager.store, { kind: 'sqlite', status: 'healthy', last_error: null });

  const sessionId = await client.startConversation({ response_count: 2, user_profile: { name: 'a', x: [[['shallow']]] } });
  client.send('conversation_end', { session_id: sessionId });
  t.same((await client.next('profile_archive')).data.user_profile, { name: 'a' }, 'a normal conversation still works; unknown fields are not kept');
});
