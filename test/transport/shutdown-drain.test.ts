import t from 'tap';
import { startTestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

// The shutdown drain is for work in flight, not for idle connections (issue 12 #11): with nothing in
// flight it ends at once, however long SHUTDOWN_DRAIN_MS is; with a generation in flight it waits for it.

t.test('idle connections and nothing in flight: the drain ends at once and they get 1001', async (t) => {
  // Ten minutes of drain: if the drain waited for it, this test would time out instead of passing.
  const server = await startTestServer({ SHUTDOWN_DRAIN_MS: '600000' });
  t.teardown(() => server.close());
  const idle = await TestClient.connect(server.wsUrl());
  t.teardown(() => idle.close());
  await idle.startConversation();
  const quiet = await TestClient.connect(server.wsUrl('/ws/quiet'));
  t.teardown(() => quiet.close());

  await server.close();
  t.match(await idle.closed, { code: 1001, reason: 'server shutting down' });
  t.match(await quiet.closed, { code: 1001 });
  t.ok(server.logs.some((line) => line.msg === 'drain complete' && line.inFlight === 0), 'the log says the drain completed, not timed out');
});

t.test('a generation in flight is finished before the 1001', async (t) => {
  const server = await startTestServer({ SHUTDOWN_DRAIN_MS: '600000', AUTO_SUGGEST: 'false', MOCK_LLM_DELTA_DELAY_MS: '30' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());
  const sessionId = await client.startConversation();
  client.send('manual_generate', { session_id: sessionId });
  t.equal((await client.next('status_update')).data.status, 'generating_response');

  const shutdown = server.close();
  const closed = await client.closed;
  const types = client.received.map((event) => event.type);
  t.ok(types.includes('llm_response'), 'the suggestions arrived before the close');
  t.equal(closed.code, 1001);
  await shutdown;
});
