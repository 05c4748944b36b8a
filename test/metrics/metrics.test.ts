import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import t from 'tap';
import { startTestServer, type TestServer } from '../kit/start-server.js';
import { synthesizeToneAudio } from '../../src/vosk-model/tone-audio.js';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';
import { FakeOpenRouter } from '../kit/fake-openrouter.js';
import { TestClient } from '../kit/ws-client.js';
import { rawExchange, upgradeRequest } from '../transport/raw-http.js';

// GET /metrics after a real conversation, parsed by a Prometheus exposition-format parser (not a regex):
// the counters moved by exactly what the conversation did.

const ONE_SECOND_PCM16 = Buffer.alloc(32_000).toString('base64');

async function scrape(url: string): Promise<Map<string, ParsedFamily>> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`GET /metrics: ${response.status}`);
  if (!response.headers.get('content-type')?.startsWith('text/plain')) throw new Error(`content type ${response.headers.get('content-type')}`);
  return new Map(parsePrometheusTextFormat(await response.text()).map((family) => [family.name, family]));
}

/** The value of the sample whose labels include `labels` (0 when there is none yet). */
function value(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  if (!family) throw new Error(`no metric ${name}`);
  const sample = family.metrics.find((m) => Object.entries(labels).every(([key, v]) => m.labels?.[key] === v));
  return sample === undefined ? 0 : Number(sample.value ?? sample.count);
}

async function conversation(server: TestServer): Promise<void> {
  const client = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  const sessionId = await client.startConversation({ response_count: 3 });
  client.send('message_start', { session_id: sessionId, sender: 'doctor' });
  await client.next('status_update');
  for (let i = 0; i < 2; i++) {
    client.send('audio_stream', { session_id: sessionId, audio_chunk: ONE_SECOND_PCM16, format: 'pcm', sample_rate: 16000, channels: 1, duration: 1 });
  }
  client.send('message_end', { session_id: sessionId });
  await client.next('message_recorded');
  await client.next('llm_response'); // AUTO_SUGGEST
  client.send('session_resume', { session_id: '00000000-0000-4000-8000-000000000000' });
  await client.next('error');
  client.sendRaw('{not json');
  await client.next('error');
  await client.close();
  await server.waitForLog((line) => line.msg === 'connection closed');
}

t.test('/metrics on the main port: parses, and moves by what one conversation did', async (t) => {
  const server = await startTestServer({ SESSION_PERSISTENCE_ENABLED: 'true', SESSION_PERSISTENCE_DIR: t.testdir() });
  t.teardown(() => server.close());
  const before = await scrape(`${server.httpUrl}/metrics`);
  t.equal(before.get('voxgate_events_total')?.type, 'COUNTER');
  t.equal(before.get('voxgate_stt_final_text_latency_seconds')?.type, 'HISTOGRAM');
  t.ok(before.has('voxgate_process_cpu_seconds_total'), 'default process metrics, prefixed');
  t.ok(before.has('voxgate_nodejs_eventloop_lag_seconds'));

  await conversation(server);
  const bad = await rawExchange(server.port, upgradeRequest('/conversation', { 'Sec-WebSocket-Version': '8' }));
  t.equal(bad.status, 426, 'an upgrade refused for an unsupported version');

  const after = await scrape(`${server.httpUrl}/metrics`);
  const moved = (name: string, labels: Record<string, string> = {}): number => value(after, name, labels) - value(before, name, labels);
  t.equal(moved('voxgate_connections_opened_total'), 1);
  t.equal(value(after, 'voxgate_connections'), 0, 'no connection open any more');
  t.equal(moved('voxgate_upgrades_refused_total', { reason: 'bad_request' }), 1);
  t.equal(moved('voxgate_events_total', { type: 'conversation_start' }), 1);
  t.equal(moved('voxgate_events_total', { type: 'audio_stream' }), 2);
  t.equal(moved('voxgate_events_total', { type: 'message_end' }), 1);
  t.equal(moved('voxgate_events_total', { type: 'malformed' }), 1);
  t.equal(moved('voxgate_errors_total', { code: 'SESSION_NOT_FOUND' }), 1);
  t.equal(moved('voxgate_errors_total', { code: 'INVALID_EVENT_DATA' }), 1);
  t.equal(moved('voxgate_sessions_created_total'), 1);
  t.equal(moved('voxgate_recordings_finished_total'), 1);
  t.equal(moved('voxgate_stt_audio_bytes_total'), 64_000);
  t.equal(moved('voxgate_stt_audio_seconds_total'), 2, 'two seconds of 16 kHz PCM16');
  t.equal(moved('voxgate_stt_final_text_latency_seconds'), 1, 'one final-text latency observed');
  t.equal(moved('voxgate_llm_requests_total', { kind: 'generate', outcome: 'ok' }), 1);
  t.equal(moved('voxgate_llm_time_to_first_token_seconds'), 1);
  t.equal(moved('voxgate_llm_generation_seconds'), 1);
  // conversation_start (create), its first activity-time write (update), message_start (update: the
  // recording), message_end (finishRecording), and the activity time written when the session left memory.
  t.equal(moved('voxgate_store_write_seconds'), 5, 'every store write timed');
  t.equal(value(after, 'voxgate_store_write_failures_total'), 0);
  t.equal(value(after, 'voxgate_sessions', { state: 'live' }), 0, 'the session left memory with its connection');
  t.equal(value(after, 'voxgate_llm_in_flight'), 0);
  t.ok(after.has('voxgate_stt_streams') && after.has('voxgate_stt_workers'));
  for (const family of after.values()) {
    for (const sample of family.metrics) {
      const labels = Object.keys(sample.labels ?? {}).filter((key) => key !== 'le');
      t.notOk(labels.some((key) => /session|connection|owner|client/i.test(key)), `${family.name}: no per-session label`);
    }
  }
});

t.test('METRICS_PORT: /metrics only there (loopback), not on the main port', async (t) => {
  const server = await startTestServer({ METRICS_PORT: '0' });
  t.teardown(() => server.close());
  const metricsPort = server.voxgate.metricsPort;
  t.ok(metricsPort !== null && metricsPort > 0);
  t.equal((await fetch(`${server.httpUrl}/metrics`)).status, 404, 'not on the main port');
  const families = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
  t.ok(families.has('voxgate_connections_opened_total'));
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/api/health`)).status, 404, 'nothing else on the metrics port');
});

t.test('LLM tokens: counted from the provider usage of each completed request', async (t) => {
  const fake = await FakeOpenRouter.start({ tokenIntervalMs: 1 });
  t.teardown(() => fake.close());
  const server = await startTestServer({ OPENROUTER_API_KEY: 'sk-metrics', OPENROUTER_BASE_URL: fake.baseUrl, AUTO_SUGGEST: 'false' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());
  const sessionId = await client.startConversation();
  client.send('manual_generate', { session_id: sessionId });
  await client.next('llm_response');
  const families = await scrape(`${server.httpUrl}/metrics`);
  const [request] = fake.requests;
  t.ok(request, 'one upstream request');
  const promptTokens = JSON.stringify(request!.body.messages ?? []).length >> 2; // what the fake reports
  t.equal(value(families, 'voxgate_llm_tokens_total', { kind: 'prompt' }), promptTokens);
  t.equal(value(families, 'voxgate_llm_tokens_total', { kind: 'completion' }), request!.tokensSent);
  t.equal(value(families, 'voxgate_llm_requests_total', { kind: 'generate', outcome: 'ok' }), 1);
});

t.test('Vosk: decode time carried with the workers results, workers started and lost', async (t) => {
  const modelDir = t.testdir();
  await writeToneModel(modelDir);
  const server = await startTestServer({ STT_ENGINE: 'vosk', VOSK_MODEL_PATH: modelDir, MAX_WORKERS: '1', AUTO_SUGGEST: 'false' });
  t.teardown(() => server.close());
  const before = await scrape(`${server.httpUrl}/metrics`);
  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());
  const sessionId = await client.startConversation();
  client.send('message_start', { session_id: sessionId, sender: 'user' });
  await client.next('status_update');
  // One chunk of tone audio (a few seconds), then the end: the recogniser decodes all of it.
  client.send('audio_stream', { session_id: sessionId, audio_chunk: synthesizeToneAudio(['alpha', 'bravo']).toString('base64') });
  client.send('message_end', { session_id: sessionId });
  const recorded = await client.next('message_recorded');
  t.equal(recorded.data.message_content, 'alpha bravo', 'recognised for real');
  const after = await scrape(`${server.httpUrl}/metrics`);
  t.ok(value(after, 'voxgate_stt_decode_seconds_total') > value(before, 'voxgate_stt_decode_seconds_total'), 'decode time moved');
  t.equal(value(after, 'voxgate_stt_workers_started_total'), 1, 'MAX_WORKERS=1: one worker started');
  t.equal(value(after, 'voxgate_stt_workers_lost_total'), 0);
  t.equal(value(after, 'voxgate_stt_workers'), 1);
});
