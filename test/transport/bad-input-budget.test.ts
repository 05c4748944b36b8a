import t from 'tap';
import { startTestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

// Replies to bad input cost the connection's event budget (issue 12 #7): a client cannot buy an
// unlimited stream of error events or log lines by sending malformed frames.

t.test('malformed frames: answered while in budget, then one RATE_LIMITED, then silence; logged once', async (t) => {
  const server = await startTestServer({ EVENT_RATE_PER_SECOND: '1', EVENT_RATE_BURST: '5' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl('/ws/flooder'));
  // 5 in budget, then 3 over it (fewer than the burst: not yet abuse).
  for (let i = 0; i < 8; i++) client.sendRaw(`{"type": "nonsense_${i}"`);
  // Every reply to a frame goes out before the close frame that answers ours.
  await client.close();
  const replies = client.pending();
  t.same(replies.map((event) => event.data.error_code), [
    'INVALID_EVENT_DATA',
    'INVALID_EVENT_DATA',
    'INVALID_EVENT_DATA',
    'INVALID_EVENT_DATA',
    'INVALID_EVENT_DATA',
    'RATE_LIMITED',
  ]);
  const malformedLines = server.logs.filter((line) => line.msg === 'malformed event' && line.clientId === 'flooder');
  t.equal(malformedLines.length, 1, 'one log line for eight malformed frames');
});

t.test('over-budget control events are dropped without a reply after the first RATE_LIMITED', async (t) => {
  const server = await startTestServer({ EVENT_RATE_PER_SECOND: '1', EVENT_RATE_BURST: '4' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  const sessionId = await client.startConversation();
  for (let i = 0; i < 6; i++) client.send('get_message_history', { session_id: sessionId });
  // Audio is not counted against the budget: it still reaches the dialogue (which answers it).
  client.send('audio_stream', { session_id: sessionId, audio_chunk: 'AAAA' });
  await client.close();
  const replies = client.pending().map((event) => event.data.error_code ?? event.type);
  t.same(replies.slice(0, 4), ['message_history_response', 'message_history_response', 'message_history_response', 'RATE_LIMITED']);
  t.equal(replies.filter((reply) => reply === 'RATE_LIMITED').length, 1, 'one RATE_LIMITED for three dropped events');
  t.notOk(replies.includes('message_history_response', 3), 'nothing answered past the budget');
});

t.test('persistent abuse: more than EVENT_RATE_BURST drops in a window closes the connection with 1008', async (t) => {
  const server = await startTestServer({ EVENT_RATE_PER_SECOND: '1', EVENT_RATE_BURST: '5' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  for (let i = 0; i < 50; i++) client.sendRaw('not json');
  const closed = await client.closed;
  t.match(closed, { code: 1008, reason: 'event rate limit exceeded' });
  t.equal(client.received.length, 6, '5 answers and one RATE_LIMITED, nothing after');
  const next = await TestClient.connect(server.wsUrl());
  t.teardown(() => next.close());
  t.ok(await next.startConversation(), 'others are served');
});
