import t from 'tap';
import { startTestServer } from '../kit/start-server.js';
import { TestClient, type ServerEventJson } from '../kit/ws-client.js';

// Every client event and every server event with its exact JSON shape, through a real WebSocket.

const keys = (event: ServerEventJson) => Object.keys(event.data).sort();
const second = (bytes = 32_000) => Buffer.alloc(bytes, 0).toString('base64');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const userProfile = { name: '小明', age: 30, gender: 'male', relations: ['朋友'], personalities: [], preferences: ['咖啡'], taboos: [], common_topics: ['工作'] };
const targetProfile = { name: 'Dr. Lee', gender: 'female' };

t.test('a whole conversation, every event shape', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  t.teardown(() => client.close());

  client.send('conversation_start', {
    response_count: 3,
    scenario_description: '在医院看病',
    history_messages: [
      { message_id: 'h1', sender: 'doctor', content: '你好' },
      { message_id: 'h2', sender: 'user', content: '医生好' },
    ],
    user_profile: userProfile,
    target_profile: targetProfile,
  });
  const created = await client.next();
  t.equal(created.type, 'session_created');
  t.same(keys(created), ['session_id']);
  t.match(created.data.session_id, UUID);
  const sessionId = created.data.session_id as string;

  client.send('message_start', { session_id: sessionId, sender: 'doctor' });
  const recording = await client.next();
  t.same(recording, { type: 'status_update', data: { session_id: sessionId, status: 'recording_message', message: '开始录制消息' } }, 'recording_message is the very next event');

  client.send('audio_stream', { session_id: sessionId, audio_chunk: second(), format: 'pcm', sample_rate: 16000, channels: 1, duration: 1 });
  const partial = await client.next();
  t.same(partial, { type: 'transcript_partial', data: { session_id: sessionId, message_id: 'msg_001', text: '[mock: 1 s of audio]' } });

  client.send('message_end', { session_id: sessionId });
  t.same(await client.next(), { type: 'status_update', data: { session_id: sessionId, status: 'processing_stt', message: '处理语音转文字' } });
  t.same(await client.next(), {
    type: 'message_recorded',
    data: { session_id: sessionId, message_id: 'msg_001', message_content: '[mock transcript: 1.00 s of audio, 32000 bytes]', sender: 'doctor' },
  });
  // AUTO_SUGGEST: a generation starts by itself after a recording.
  t.same(await client.next(), { type: 'status_update', data: { session_id: sessionId, status: 'generating_response', message: '生成回答建议' } });
  const delta = await client.next();
  t.equal(delta.type, 'llm_response_delta');
  t.same(keys(delta), ['delta', 'index', 'request_id', 'session_id']);
  const auto = await client.next('llm_response');
  t.same(keys(auto), ['request_id', 'session_id', 'suggestions']);
  t.equal(auto.data.suggestions.length, 3);
  t.match(auto.data.request_id, UUID);
  t.equal(delta.data.request_id, auto.data.request_id);

  client.send('manual_generate', { session_id: sessionId, focused_message_ids: ['h1', 'msg_001'], user_corpus: '我想说我头疼' });
  t.same(await client.next(), { type: 'status_update', data: { session_id: sessionId, status: 'generating_response', message: '生成回答建议' } });
  const manual = await client.next('llm_response');
  t.equal(manual.data.suggestions.length, 3);
  t.not(manual.data.request_id, auto.data.request_id);

  client.send('user_modification', { session_id: sessionId, modification: '更礼貌一点' });
  t.equal((await client.next()).data.status, 'generating_response');
  await client.next('llm_response');

  client.send('user_selected_response', { session_id: sessionId, selected_content: '我头有点疼。', sender: 'user' });
  t.same(await client.next(), { type: 'message_recorded', data: { session_id: sessionId, message_id: 'usr_002', message_content: null, sender: 'user' } });
  const prediction = await client.next();
  t.equal(prediction.type, 'opinion_prediction_response');
  t.same(keys(prediction), ['prediction', 'request_id', 'session_id']);
  t.same(Object.keys(prediction.data.prediction).sort(), ['mood', 'tendency', 'tone']);
  t.ok(['合作', '对抗', '中立', '探索', '安抚'].includes(prediction.data.prediction.tendency));
  t.ok(['积极', '消极', '平静', '好奇', '困惑'].includes(prediction.data.prediction.mood));
  t.ok(['正式', '随意', '坚定', '委婉', '幽默'].includes(prediction.data.prediction.tone));

  client.send('scenario_supplement', { session_id: sessionId, supplement: '在医院复诊' });
  client.send('response_count_update', { session_id: sessionId, response_count: 5 });
  client.send('get_message_history', { session_id: sessionId });
  const history = await client.next();
  t.equal(history.type, 'message_history_response', 'scenario_supplement and response_count_update send no reply');
  t.same(keys(history), ['messages', 'request_id', 'session_id', 'total_count']);
  t.equal(history.data.total_count, 4);
  t.same(
    history.data.messages.map((m: Record<string, unknown>) => [m.message_id, m.sender, m.message_type]),
    [
      ['h1', 'doctor', 'history'],
      ['h2', 'user', 'history'],
      ['msg_001', 'doctor', 'recording'],
      ['usr_002', 'user', 'selected_response'],
    ],
    'history, history, recording, selected reply',
  );
  for (const message of history.data.messages) {
    t.same(Object.keys(message).sort(), ['content', 'created_at', 'message_id', 'message_type', 'sender']);
    t.ok(!Number.isNaN(Date.parse(message.created_at)));
  }

  const other = await TestClient.connect(server.wsUrl('/ws/phone-2'));
  t.teardown(() => other.close());
  other.send('session_resume', { session_id: sessionId });
  const restored = await other.next();
  t.equal(restored.type, 'session_restored');
  t.same(keys(restored), ['has_modifications', 'message_count', 'response_count', 'restored_at', 'scenario_description', 'session_id', 'status']);
  t.match(restored.data, { session_id: sessionId, status: 'idle', message_count: 2, scenario_description: '在医院复诊', response_count: 5, has_modifications: true });

  client.send('conversation_end', { session_id: sessionId });
  const archive = await client.next();
  t.same(archive, { type: 'profile_archive', data: { session_id: sessionId, user_profile: userProfile, target_profile: targetProfile } }, 'profiles exactly as sent');
  t.equal((await other.next()).type, 'profile_archive', 'every attached connection hears the end');

  client.send('get_message_history', { session_id: sessionId });
  const gone = await client.next();
  t.same(gone, {
    type: 'error',
    data: {
      session_id: sessionId,
      error_code: 'SESSION_NOT_FOUND',
      message: '会话不存在',
      details: `session ${sessionId} not found (session_id: ${sessionId})`,
    },
  });
  t.equal(client.socket.readyState, client.socket.OPEN, 'the connection stays open after conversation_end');
});

t.test('a session without profiles archives nulls; non-ASCII is sent as is', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl('/conservation'));
  t.teardown(() => client.close());
  const raw: string[] = [];
  client.socket.on('message', (data) => raw.push(data.toString()));
  const sessionId = await client.startConversation({ response_count: 1 });
  client.send('conversation_end', { session_id: sessionId });
  t.same(await client.next(), { type: 'profile_archive', data: { session_id: sessionId, user_profile: null, target_profile: null } });
  client.send('message_start', { session_id: 'nope', sender: '医生' });
  await client.next('error');
  client.send('conversation_start', { response_count: 2, scenario_description: '咖啡馆' });
  const created = await client.next('session_created');
  client.send('message_start', { session_id: created.data.session_id, sender: 'x' });
  await client.next('status_update');
  t.ok(raw.some((line) => line.includes('开始录制消息')), 'UTF-8, not \\u escapes');
});

t.test('every WebSocket path is served', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  for (const path of ['/conversation', '/conservation', '/ws', '/ws/client-42']) {
    const client = await TestClient.connect(server.wsUrl(path));
    const sessionId = await client.startConversation();
    t.match(sessionId, UUID, path);
    await client.close();
  }
  await t.rejects(TestClient.connect(server.wsUrl('/elsewhere')), { message: 'HTTP 404' });
});
