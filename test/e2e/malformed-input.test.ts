import t from 'tap';
import { startTestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

// Bad input gets an error event with the right code and names what is wrong; the connection stays open
// and the session is exactly as it was.

t.test('malformed inputs: each gets its error and changes nothing', async (t) => {
  const server = await startTestServer({ WEBSOCKET_MAX_MESSAGE_SIZE: '65536', AUTO_SUGGEST: 'false' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());
  const stranger = await TestClient.connect(server.wsUrl());
  t.teardown(() => stranger.close());

  const sessionId = await client.startConversation({
    response_count: 3,
    scenario_description: 'at the bakery',
    history_messages: [{ message_id: 'h1', sender: 'clerk', content: 'Next please' }],
  });
  const strangerSession = await stranger.startConversation({ response_count: 2 });

  const snapshot = async () => {
    client.send('get_message_history', { session_id: sessionId });
    const history = (await client.next('message_history_response')).data;
    const observer = await TestClient.connect(server.wsUrl());
    observer.send('session_resume', { session_id: sessionId });
    const restored = (await observer.next('session_restored')).data;
    await observer.close();
    return {
      messages: history.messages,
      status: restored.status,
      message_count: restored.message_count,
      scenario: restored.scenario_description,
      response_count: restored.response_count,
      has_modifications: restored.has_modifications,
    };
  };
  const before = await snapshot();

  const s = sessionId;
  const huge = 'x'.repeat(30_000);
  type Case = [name: string, frame: string | Buffer, code: string, details?: RegExp, binary?: boolean];
  const cases: Case[] = [
    ['not JSON', '{"type": "conversation_start"', 'INVALID_EVENT_DATA', /JSON/],
    ['plain text', 'hello', 'INVALID_EVENT_DATA'],
    ['JSON array', '[1,2,3]', 'INVALID_EVENT_DATA', /object/],
    ['JSON string', '"conversation_start"', 'INVALID_EVENT_DATA'],
    ['JSON null', 'null', 'INVALID_EVENT_DATA'],
    ['no type', JSON.stringify({ data: { session_id: s } }), 'MISSING_REQUIRED_FIELD', /\(type: /],
    ['numeric type', JSON.stringify({ type: 42, data: {} }), 'INVALID_EVENT_DATA', /\(type: /],
    ['unknown type', JSON.stringify({ type: 'self_destruct', data: { session_id: s } }), 'INVALID_EVENT_TYPE', /self_destruct/],
    ['data is a string', JSON.stringify({ type: 'message_end', data: 'abc' }), 'INVALID_EVENT_DATA', /\(data: /],
    ['data is an array', JSON.stringify({ type: 'message_end', data: [s] }), 'INVALID_EVENT_DATA', /\(data: /],
    ['missing response_count', JSON.stringify({ type: 'conversation_start', data: {} }), 'MISSING_REQUIRED_FIELD', /data\.response_count/],
    ['response_count as string', JSON.stringify({ type: 'conversation_start', data: { response_count: '3' } }), 'INVALID_EVENT_DATA', /data\.response_count/],
    // Nothing else in a conversation_start is refused: it is made to fit (test/protocol/decode.test.ts).
    ['nested too deep', `{"type":"conversation_start","data":{"response_count":1,"user_profile":{"x":${'['.repeat(100)}${']'.repeat(100)}}}}`, 'INVALID_EVENT_DATA', /max_json_depth/],
    ['response_count 0', JSON.stringify({ type: 'conversation_start', data: { response_count: 0 } }), 'INVALID_EVENT_DATA', /data\.response_count/],
    ['response_count 6', JSON.stringify({ type: 'response_count_update', data: { session_id: s, response_count: 6 } }), 'INVALID_EVENT_DATA', /data\.response_count/],
    ['response_count -1', JSON.stringify({ type: 'response_count_update', data: { session_id: s, response_count: -1 } }), 'INVALID_EVENT_DATA', /data\.response_count/],
    ['response_count 2.5', JSON.stringify({ type: 'response_count_update', data: { session_id: s, response_count: 2.5 } }), 'INVALID_EVENT_DATA', /data\.response_count/],
    ['missing session_id', JSON.stringify({ type: 'message_end', data: {} }), 'MISSING_REQUIRED_FIELD', /data\.session_id/],
    ['session_id as number', JSON.stringify({ type: 'message_end', data: { session_id: 7 } }), 'INVALID_EVENT_DATA', /data\.session_id/],
    ['unknown session', JSON.stringify({ type: 'get_message_history', data: { session_id: 'no-such-session' } }), 'SESSION_NOT_FOUND'],
    ['message_start without sender', JSON.stringify({ type: 'message_start', data: { session_id: s } }), 'MISSING_REQUIRED_FIELD', /data\.sender/],
    ['message_end without recording', JSON.stringify({ type: 'message_end', data: { session_id: s } }), 'NOT_RECORDING'],
    ['audio before message_start', JSON.stringify({ type: 'audio_stream', data: { session_id: s, audio_chunk: 'AAAA' } }), 'NOT_RECORDING'],
    ['binary before message_start', Buffer.alloc(640), 'NOT_RECORDING', undefined, true],
    ['audio_chunk as number', JSON.stringify({ type: 'audio_stream', data: { session_id: s, audio_chunk: 12 } }), 'INVALID_EVENT_DATA', /data\.audio_chunk/],
    ['huge sender', JSON.stringify({ type: 'user_selected_response', data: { session_id: s, sender: huge, selected_content: 'hi' } }), 'INVALID_EVENT_DATA', /data\.sender/],
    ['huge modification', JSON.stringify({ type: 'user_modification', data: { session_id: s, modification: huge } }), 'INVALID_EVENT_DATA', /data\.modification/],
    ['empty modification', JSON.stringify({ type: 'user_modification', data: { session_id: s, modification: '' } }), 'INVALID_EVENT_DATA', /data\.modification/],
    ['selected reply without text', JSON.stringify({ type: 'user_selected_response', data: { session_id: s, sender: 'me' } }), 'MISSING_REQUIRED_FIELD', /data\.selected_content/],
    ['focus ids not a list', JSON.stringify({ type: 'manual_generate', data: { session_id: s, focused_message_ids: 'h1' } }), 'INVALID_EVENT_DATA', /data\.focused_message_ids/],
    ['supplement as object', JSON.stringify({ type: 'scenario_supplement', data: { session_id: s, supplement: { text: 'x' } } }), 'INVALID_EVENT_DATA', /data\.supplement/],
  ];
  t.ok(cases.length >= 30);

  for (const [name, frame, code, details, binary] of cases) {
    client.sendRaw(frame, binary === true);
    const reply = await client.next();
    t.equal(reply.type, 'error', `${name}: error event`);
    t.equal(reply.data.error_code, code, `${name}: ${code}`);
    t.same(Object.keys(reply.data).sort(), ['details', 'error_code', 'message', 'session_id'], `${name}: error shape`);
    t.type(reply.data.message, 'string');
    if (details) t.match(reply.data.details, details, `${name}: details name the field`);
  }
  t.same(client.pending(), [], 'exactly one reply per bad frame');

  // Events naming a session another live connection is attached to are held for this connection's
  // session_resume (the app's reconnect may find the old socket half-open): no reply, nothing runs.
  client.send('manual_generate', { session_id: strangerSession });
  client.send('conversation_end', { session_id: strangerSession });
  client.send('get_message_history', { session_id: sessionId });
  t.equal((await client.next()).type, 'message_history_response', "another connection's session: held, not answered");
  t.same(await snapshot(), before, 'the session is unchanged');

  // The stranger's session was not touched by the attempts above either.
  stranger.send('get_message_history', { session_id: strangerSession });
  t.equal((await stranger.next('message_history_response')).data.total_count, 0);
  t.same(stranger.pending(), [], 'the stranger received nothing from the other client');
});

t.test('a message over WEBSOCKET_MAX_MESSAGE_SIZE closes with 1009 and a reason', async (t) => {
  const server = await startTestServer({ WEBSOCKET_MAX_MESSAGE_SIZE: '65536' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  const sessionId = await client.startConversation();
  client.send('audio_stream', { session_id: sessionId, audio_chunk: 'A'.repeat(100_000) });
  const closed = await client.closed;
  t.equal(closed.code, 1009);
  t.match(closed.reason, /WEBSOCKET_MAX_MESSAGE_SIZE=65536/);
});

t.test('a text frame that is not UTF-8 is cut off by uWebSockets.js; the server keeps serving', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  client.sendRaw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
  // uWS v20.30 validates UTF-8 itself and drops the connection without a close frame (1006).
  t.ok([1006, 1007].includes((await client.closed).code));
  const next = await TestClient.connect(server.wsUrl());
  t.ok(await next.startConversation());
  await next.close();
});

t.test('too many events per second are refused with one RATE_LIMITED, then dropped silently', async (t) => {
  const server = await startTestServer({ EVENT_RATE_PER_SECOND: '1', EVENT_RATE_BURST: '3' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());
  const sessionId = await client.startConversation();
  for (let i = 0; i < 5; i++) client.send('get_message_history', { session_id: sessionId });
  // The server answers every frame before the close frame that follows them: closing is the event that
  // says every reply that will come has come.
  await client.close();
  const replies = client.pending();
  t.same(replies.map((r) => r.type), ['message_history_response', 'message_history_response', 'error']);
  t.equal(replies[2]!.data.error_code, 'RATE_LIMITED');
});

t.test('sessions per connection and connections per server are limited', async (t) => {
  const server = await startTestServer({ MAX_SESSIONS_PER_CONNECTION: '2', MAX_CONNECTIONS: '2' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());
  await client.startConversation();
  const second = await client.startConversation();
  client.send('conversation_start', { response_count: 1 });
  const refused = await client.next();
  t.equal(refused.data.error_code, 'SESSION_LIMIT_EXCEEDED');
  client.send('conversation_end', { session_id: second });
  await client.next('profile_archive');
  await client.startConversation();

  const other = await TestClient.connect(server.wsUrl());
  t.teardown(() => other.close());
  await t.rejects(TestClient.connect(server.wsUrl()), { message: 'HTTP 503' }, 'the third connection is refused at upgrade');
});

t.test('origins outside ALLOWED_ORIGINS are refused at upgrade', async (t) => {
  const server = await startTestServer({ ALLOWED_ORIGINS: 'https://app.example' });
  t.teardown(() => server.close());
  await t.rejects(TestClient.connect(server.wsUrl(), { origin: 'https://evil.example' }), { message: 'HTTP 403' });
  const ok = await TestClient.connect(server.wsUrl(), { origin: 'https://app.example' });
  await ok.close();
});
