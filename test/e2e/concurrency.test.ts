import t from 'tap';
import { startTestServer, startWithConversation } from '../kit/start-server.js';
import { TestClient, type ServerEventJson } from '../kit/ws-client.js';

const audio = (ms: number) => Buffer.alloc(ms * 32).toString('base64');

t.test('response_count 3, then 5, then 2: exactly that many suggestions each time', async (t) => {
  const { client, sessionId } = await startWithConversation(t, {}, { response_count: 3 }, {}, { extensions: 'all' });
  for (const count of [3, 5, 2]) {
    if (count !== 3) client.send('response_count_update', { session_id: sessionId, response_count: count });
    client.send('manual_generate', { session_id: sessionId });
    const response = await client.next('llm_response');
    t.equal(response.data.suggestions.length, count, `${count} suggestions`);
    t.equal(new Set(response.data.suggestions).size, count, 'all distinct');
  }
});

t.test('two manual_generate in quick succession: only the second one is delivered', async (t) => {
  const { client, sessionId } = await startWithConversation(t, { MOCK_LLM_DELTA_DELAY_MS: '15' }, { response_count: 3 }, {}, { extensions: 'all' });
  client.send('manual_generate', { session_id: sessionId });
  client.send('manual_generate', { session_id: sessionId });
  const response = await client.next('llm_response');
  // A later round trip proves nothing else was on its way.
  client.send('get_message_history', { session_id: sessionId });
  await client.next('message_history_response');
  const responses = client.received.filter((e) => e.type === 'llm_response');
  t.equal(responses.length, 1, 'exactly one llm_response');
  const deltaIds = new Set(client.received.filter((e) => e.type === 'llm_response_delta').map((e) => e.data.request_id));
  t.same([...deltaIds], [response.data.request_id], 'no delta of the superseded request');
});

t.test('after message_recorded a generation starts by itself; message_start cancels it', async (t) => {
  const { client, sessionId } = await startWithConversation(t, { MOCK_LLM_DELTA_DELAY_MS: '20' }, { response_count: 3 }, {}, { extensions: 'all' });
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  await client.next('status_update');
  client.send('audio_stream', { session_id: sessionId, audio_chunk: audio(500) });
  client.send('message_end', { session_id: sessionId });
  await client.next('message_recorded');
  const generating = await client.next();
  t.match(generating, { type: 'status_update', data: { status: 'generating_response' } }, 'auto-suggest without manual_generate');
  const firstDelta = await client.next('llm_response_delta');
  const cancelledId = firstDelta.data.request_id as string;

  client.send('message_start', { session_id: sessionId, sender: 'other' });
  const recording = await client.next('status_update');
  t.equal(recording.data.status, 'recording_message');
  const cutoff = client.received.indexOf(recording);
  client.send('manual_generate', { session_id: sessionId });
  const fresh = await client.next('llm_response');
  t.not(fresh.data.request_id, cancelledId);
  const late = client.received.slice(cutoff).filter((e) => e.data.request_id === cancelledId);
  t.same(late, [], 'nothing of the cancelled generation after message_start');
  t.notOk(client.received.some((e) => e.type === 'llm_response' && e.data.request_id === cancelledId), 'no llm_response for it ever');
});

t.test('AUTO_SUGGEST=false: no generation after a recording', async (t) => {
  const { client, sessionId } = await startWithConversation(t, { AUTO_SUGGEST: 'false' });
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  client.send('message_end', { session_id: sessionId });
  await client.next('message_recorded');
  client.send('get_message_history', { session_id: sessionId });
  t.equal((await client.next()).type, 'message_history_response');
});

t.test('two clients in parallel never receive each other\'s events', async (t) => {
  const server = await startTestServer({ MOCK_LLM_DELTA_DELAY_MS: '1' });
  t.teardown(() => server.close());
  const alice = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  const bob = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  t.teardown(() => alice.close());
  t.teardown(() => bob.close());
  const run = async (client: TestClient, sender: string, ms: number) => {
    const sessionId = await client.startConversation({ response_count: 2 });
    for (let round = 0; round < 3; round++) {
      client.send('message_start', { session_id: sessionId, sender });
      client.send('audio_stream', { session_id: sessionId, audio_chunk: audio(ms) });
      client.send('message_end', { session_id: sessionId });
      await client.next('llm_response');
      client.send('user_selected_response', { session_id: sessionId, selected_content: `${sender} says ${round}`, sender });
      await client.next('opinion_prediction_response');
    }
    return sessionId;
  };
  const [aliceSession, bobSession] = await Promise.all([run(alice, 'alice', 300), run(bob, 'bob', 700)]);
  const foreign = (events: ServerEventJson[], own: string) => events.filter((e) => e.data.session_id !== own);
  t.same(foreign(alice.received, aliceSession), [], 'alice only hears about her session');
  t.same(foreign(bob.received, bobSession), [], 'bob only hears about his session');
  t.ok(alice.received.some((e) => e.type === 'message_recorded' && /9600 bytes/.test(e.data.message_content ?? '')));
  t.ok(bob.received.some((e) => e.type === 'message_recorded' && /22400 bytes/.test(e.data.message_content ?? '')));
});

t.test('disconnect mid-recording, reconnect, resume: one message covers audio from both connections', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  const first = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  const sessionId = await first.startConversation();
  first.send('message_start', { session_id: sessionId, sender: 'other' });
  await first.next('status_update');
  first.send('audio_stream', { session_id: sessionId, audio_chunk: audio(1000) });
  first.sendRaw(Buffer.alloc(3200), true);
  await first.next('transcript_partial');
  await first.close();

  const second = await TestClient.connect(server.wsUrl('/ws/reconnected'), { extensions: 'all' });
  t.teardown(() => second.close());
  second.send('session_resume', { session_id: sessionId });
  const restored = await second.next();
  t.match(restored, { type: 'session_restored', data: { session_id: sessionId, status: 'recording_message', message_count: 0 } });
  t.match(await second.next(), { type: 'status_update', data: { status: 'recording_message' } });
  second.send('audio_stream', { session_id: sessionId, audio_chunk: audio(1000) });
  second.sendRaw(Buffer.alloc(6400), true);
  second.send('message_end', { session_id: sessionId });
  const recorded = await second.next('message_recorded');
  t.equal(recorded.data.message_id, 'msg_001');
  t.equal(recorded.data.message_content, '[mock transcript: 2.30 s of audio, 73600 bytes]', 'audio before and after the disconnect');
});

t.test('a 90-second recording in 900 chunks of 100 ms ends in one message_recorded', async (t) => {
  const { client, sessionId } = await startWithConversation(t, { AUTO_SUGGEST: 'false' });
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  const chunk = audio(100);
  for (let i = 0; i < 900; i++) client.send('audio_stream', { session_id: sessionId, audio_chunk: chunk });
  client.send('message_end', { session_id: sessionId });
  const recorded = await client.next('message_recorded');
  t.equal(recorded.data.message_content, '[mock transcript: 90.00 s of audio, 2880000 bytes]');
  t.equal(client.received.filter((e) => e.type === 'message_recorded').length, 1);
  t.equal(client.received.filter((e) => e.type === 'error').length, 0);
});

t.test('audio past AUDIO_BUFFER_MAX_SIZE is refused once with AUDIO_LIMIT_EXCEEDED; what came before is kept', async (t) => {
  const { client, sessionId } = await startWithConversation(t, { AUDIO_BUFFER_MAX_SIZE: '65536', AUTO_SUGGEST: 'false' });
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  for (let i = 0; i < 4; i++) client.send('audio_stream', { session_id: sessionId, audio_chunk: audio(1000) });
  const error = await client.next('error');
  t.equal(error.data.error_code, 'AUDIO_LIMIT_EXCEEDED');
  client.send('message_end', { session_id: sessionId });
  const recorded = await client.next('message_recorded');
  t.equal(recorded.data.message_content, '[mock transcript: 2.00 s of audio, 64000 bytes]');
  t.equal(client.received.filter((e) => e.type === 'error').length, 1, 'reported once per recording');
});

t.test('message_start while recording finishes that recording first (no automatic suggestions), then starts the new one', async (t) => {
  const { client, sessionId } = await startWithConversation(t, { AUTO_SUGGEST: 'true' });
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  client.send('audio_stream', { session_id: sessionId, audio_chunk: audio(1000) });
  // The message_end of that recording went out on a socket that died: the app starts the next one.
  client.send('message_start', { session_id: sessionId, sender: 'me' });
  client.send('audio_stream', { session_id: sessionId, audio_chunk: audio(500) });
  client.send('message_end', { session_id: sessionId });
  const firstRecorded = await client.next('message_recorded');
  t.match(firstRecorded.data, { message_id: 'msg_001', message_content: /1\.00 s/, sender: 'other' });
  t.match(await client.next(), { type: 'status_update', data: { status: 'recording_message' } }, 'then the new recording starts');
  t.match(await client.next(), { type: 'status_update', data: { status: 'processing_stt' } });
  const second = await client.next('message_recorded');
  t.match(second.data, { message_id: 'msg_002', message_content: /0\.50 s/, sender: 'me' }, 'later audio joins the new message');
  await client.next('llm_response');
  const types = client.received.map((e) => e.type);
  t.notOk(types.includes('error'), 'no error');
  t.equal(types.filter((type) => type === 'llm_response').length, 1, 'suggestions only after the recording that was ended by message_end');
});
