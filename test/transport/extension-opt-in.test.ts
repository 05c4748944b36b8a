import t from 'tap';
import { EXTENSION_EVENT_TYPES } from '../../src/protocol/extensions.js';
import { startTestServer } from '../kit/start-server.js';
import { TestClient, type ServerEventJson } from '../kit/ws-client.js';

// Extension events are opt-in per connection (issue 11 #1): `?extensions=a,b` or `?extensions=all` on
// any WebSocket path. Without it a connection receives only the replaced backend's nine event types.

const STANDARD_TYPES = [
  'session_created',
  'status_update',
  'message_recorded',
  'llm_response',
  'opinion_prediction_response',
  'session_restored',
  'profile_archive',
  'message_history_response',
  'error',
];

const SECOND_OF_AUDIO = Buffer.alloc(32_000).toString('base64');

/** A recording of three 1 s chunks (the mock recogniser reports a partial per second), then suggestions. */
async function recordAndGenerate(client: TestClient, sessionId: string): Promise<ServerEventJson[]> {
  const from = client.received.length;
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  await client.next('status_update');
  for (let i = 0; i < 3; i++) client.send('audio_stream', { session_id: sessionId, audio_chunk: SECOND_OF_AUDIO });
  client.send('message_end', { session_id: sessionId });
  await client.next('message_recorded');
  client.send('manual_generate', { session_id: sessionId });
  await client.waitFor((event) => event.type === 'llm_response' && event.data.suggestions.length > 0);
  return client.received.slice(from);
}

t.test('without ?extensions only the nine standard types arrive; the same session opted in gets the extensions', async (t) => {
  const server = await startTestServer({ AUTO_SUGGEST: 'false', MOCK_LLM_DELTA_DELAY_MS: '1' });
  t.teardown(() => server.close());

  const plain = await TestClient.connect(server.wsUrl());
  const sessionId = await plain.startConversation();
  const plainEvents = await recordAndGenerate(plain, sessionId);
  t.same(plainEvents.filter((event) => !STANDARD_TYPES.includes(event.type)), [], 'no extension event without the query');
  t.same(
    plainEvents.map((event) => event.type),
    ['status_update', 'status_update', 'message_recorded', 'status_update', 'llm_response'],
    'the replaced backend\'s sequence, nothing in between',
  );
  await plain.close();

  const opted = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  t.teardown(() => opted.close());
  opted.send('session_resume', { session_id: sessionId });
  await opted.next('session_restored');
  const optedEvents = await recordAndGenerate(opted, sessionId);
  const types = new Set(optedEvents.map((event) => event.type));
  for (const type of EXTENSION_EVENT_TYPES) t.ok(types.has(type), `${type} arrives with extensions=all`);
});

t.test('names are comma-separated, unknown ones ignored, any WebSocket path', async (t) => {
  const server = await startTestServer({ AUTO_SUGGEST: 'false', MOCK_LLM_DELTA_DELAY_MS: '1' });
  t.teardown(() => server.close());
  const cases: Array<{ path: string; expected: string[] }> = [
    { path: '/conversation?extensions=transcript_partial,no_such_event', expected: ['transcript_partial'] },
    { path: '/ws/phone?extensions=llm_response_delta', expected: ['llm_response_delta'] },
    { path: '/conservation?foo=1&extensions=transcript_partial%2Cllm_response_delta', expected: ['transcript_partial', 'llm_response_delta'] },
    { path: '/ws?extensions=', expected: [] },
    { path: '/ws?extensions=ALL', expected: [] },
  ];
  for (const { path, expected } of cases) {
    const client = await TestClient.connect(server.wsUrl(path));
    const sessionId = await client.startConversation();
    const events = await recordAndGenerate(client, sessionId);
    const received = EXTENSION_EVENT_TYPES.filter((type) => events.some((event) => event.type === type));
    t.same(received, expected, `${path}: ${expected.join(', ') || 'none'}`);
    await client.close();
  }
});
