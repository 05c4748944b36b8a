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

t.test('audio_stream with invalid base64 is malformed input: on the budget, one RATE_LIMITED, logged once', async (t) => {
  const server = await startTestServer({ EVENT_RATE_PER_SECOND: '1', EVENT_RATE_BURST: '5' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl('/ws/b64'));
  const sessionId = await client.startConversation();
  client.send('message_start', { session_id: sessionId, sender: 'me' });
  t.equal((await client.next()).data.status, 'recording_message');
  // 2 events already spent; 3 more answered, then one RATE_LIMITED, then silence (fewer than the burst).
  for (let i = 0; i < 8; i++) client.send('audio_stream', { session_id: sessionId, audio_chunk: '!!!!' });
  await client.close();
  const replies = client.pending().map((event) => event.data.error_code ?? event.type);
  t.same(replies, ['INVALID_EVENT_DATA', 'INVALID_EVENT_DATA', 'INVALID_EVENT_DATA', 'RATE_LIMITED']);
  t.match(client.received.find((event) => event.data.error_code === 'INVALID_EVENT_DATA'), { data: { details: /data\.audio_chunk/ } });
  const lines = server.logs.filter((line) => line.clientId === 'b64' && (line.msg === 'malformed event' || line.msg === 'event rejected'));
  t.equal(lines.length, 1, 'one log line for eight bad chunks');
});

t.test('audio naming ever new unknown sessions: a bounded number of SESSION_NOT_FOUND replies per connection', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl('/ws/inventor'));
  for (let i = 0; i < 300; i++) client.send('audio_stream', { session_id: `invented-${i}`, audio_chunk: 'AAAA' });
  await client.close();
  const notFound = client.received.filter((event) => event.data.error_code === 'SESSION_NOT_FOUND');
  t.equal(notFound.length, 64, 'one per id for the first 64 ids, then the audio is dropped silently');
  t.same(notFound.slice(0, 2).map((event) => event.data.session_id), ['invented-0', 'invented-1']);
  const lines = server.logs.filter((line) => line.clientId === 'inventor' && line.msg === 'event rejected' && line.level === 30);
  t.ok(lines.length <= 64, 'no log line per dropped chunk past them');
});

t.test('events the dialogue refuses (unknown session, no recording) are answered within the budget but logged once per interval', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl('/ws/refused'));
  const sessionId = await client.startConversation();
  for (let i = 0; i < 40; i++) client.send('get_message_history', { session_id: `no-such-session-${i}` });
  for (let i = 0; i < 40; i++) client.send('message_end', { session_id: sessionId });
  await client.close();
  const codes = client.pending().map((event) => event.data.error_code);
  t.equal(codes.filter((code) => code === 'SESSION_NOT_FOUND').length, 40, 'every refused event in budget is answered');
  t.equal(codes.filter((code) => code === 'NOT_RECORDING').length, 40);
  const lines = server.logs.filter((line) => line.clientId === 'refused' && line.msg === 'event rejected' && line.level === 30);
  t.equal(lines.length, 1, 'one info line for 80 refusals within the interval (the others at debug)');
});
