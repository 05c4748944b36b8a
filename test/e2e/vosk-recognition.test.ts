import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import t, { type Test } from 'tap';
import type { VoskEngine } from '../../src/stt/vosk/engine.js';
import { modelLoadCount } from '../../src/stt/vosk/model.js';
import { synthesizeToneAudio } from '../../src/vosk-model/tone-audio.js';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';
import { startTestServer, type TestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

// Real speech recognition end to end: WebSocket -> uWS -> Piscina workers -> libvosk on a generated
// tone model, and back as transcript_partial / message_recorded.

const SECOND = 32_000;
// Chunks go out at 10x real time: fast, but the way a live client sends (never minutes ahead of the recogniser).
const PACE_MS_PER_SECOND = 100;

async function voskServer(t: Test, env: Record<string, string> = {}): Promise<TestServer> {
  const modelDir = t.testdir();
  await writeToneModel(modelDir);
  const server = await startTestServer({ STT_ENGINE: 'vosk', VOSK_MODEL_PATH: modelDir, MAX_WORKERS: '2', AUTO_SUGGEST: 'false', ...env });
  t.teardown(() => server.close());
  return server;
}

async function sendBase64(client: TestClient, sessionId: string, pcm: Buffer): Promise<void> {
  for (let offset = 0; offset < pcm.length; offset += SECOND) {
    client.send('audio_stream', { session_id: sessionId, audio_chunk: pcm.subarray(offset, offset + SECOND).toString('base64') });
    await delay(PACE_MS_PER_SECOND);
  }
}

async function sendBinary(client: TestClient, pcm: Buffer, frameBytes: number): Promise<void> {
  for (let offset = 0; offset < pcm.length; offset += frameBytes) {
    client.sendRaw(pcm.subarray(offset, offset + frameBytes), true);
    if ((offset / frameBytes) % 50 === 49) await delay(PACE_MS_PER_SECOND);
  }
}

/** One recording; `beforeEnd` runs once all audio was sent, while the stream is certainly still open. */
async function record(client: TestClient, sessionId: string, send: () => Promise<void>, beforeEnd?: () => void): Promise<{ text: string; partials: string[] }> {
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  await client.next('status_update');
  const from = client.received.length;
  await send();
  beforeEnd?.();
  client.send('message_end', { session_id: sessionId });
  const recorded = await client.next('message_recorded');
  const partials = client.received.slice(from).filter((e) => e.type === 'transcript_partial').map((e) => e.data.text as string);
  return { text: recorded.data.message_content as string, partials };
}

t.test('the app way (1 s base64 chunks) and the binary way (20 ms frames) give the exact words', async (t) => {
  const server = await voskServer(t);
  const client = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  t.teardown(() => client.close());
  const sessionId = await client.startConversation();
  const pcm = synthesizeToneAudio(['alpha', 'charlie', 'bravo']);

  const viaBase64 = await record(client, sessionId, () => sendBase64(client, sessionId, pcm));
  t.equal(viaBase64.text, 'alpha charlie bravo');
  const viaBinary = await record(client, sessionId, () => sendBinary(client, pcm, 640));
  t.equal(viaBinary.text, 'alpha charlie bravo');

  // Partials grow word by word.
  const distinct = [...new Set(viaBinary.partials.filter((p) => p !== ''))];
  t.same(distinct, ['alpha', 'alpha charlie', 'alpha charlie bravo'], 'transcript_partial grows word by word');
  const health = (await (await fetch(`${server.httpUrl}/api/health`)).json()) as Record<string, any>;
  t.match(health.services.stt, { engine: 'vosk', status: 'healthy', workers: 2 });
  t.equal(health.services.stt.model_path, server.config.stt.modelPath);
});

t.test('a sequence with several endpoints loses no word', async (t) => {
  const server = await voskServer(t);
  const client = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  t.teardown(() => client.close());
  const sessionId = await client.startConversation();
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'alpha', 'echo', 'bravo'];
  // Gaps over 0.5 s make libvosk close a segment (an endpoint) after every word.
  const pcm = synthesizeToneAudio(words, { gapMs: 900 });
  const { text, partials } = await record(client, sessionId, () => sendBase64(client, sessionId, pcm));
  t.equal(text, words.join(' '));
  t.ok(partials.includes('alpha bravo charlie'), 'partials carry the segments recognised before');
});

t.test('16 parallel clients, each with its own words; streams stick to one worker; one model load', async (t) => {
  const loadsBefore = modelLoadCount();
  const server = await voskServer(t, { MAX_WORKERS: '4' });
  const engine = server.voxgate.stt as VoskEngine;
  const vocabulary = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];
  // Each client looks at every open stream once its own audio is all sent: its stream is open then, so
  // every stream is seen at least once, after (nearly) all of its audio was decoded.
  const workerSeen = new Map<string, Set<number>>();
  let threadChanges = 0;
  const look = (): void => {
    for (const stream of engine.snapshot().streams) {
      const seen = workerSeen.get(stream.streamId) ?? new Set<number>();
      seen.add(stream.slot);
      workerSeen.set(stream.streamId, seen);
      threadChanges += stream.threadChanges;
    }
  };

  const results = await Promise.all(
    Array.from({ length: 16 }, async (_, i) => {
      const words = [vocabulary[i % 5]!, vocabulary[(i * 3 + 1) % 5]!, vocabulary[(i * 7 + 2) % 5]!, vocabulary[(i + 4) % 5]!];
      const client = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
      const sessionId = await client.startConversation();
      const pcm = synthesizeToneAudio(words);
      const { text } = await record(client, sessionId, () => (i % 2 === 0 ? sendBase64(client, sessionId, pcm) : sendBinary(client, pcm, 640)), look);
      await client.close();
      return { expected: words.join(' '), text };
    }),
  );
  for (const [i, result] of results.entries()) t.equal(result.text, result.expected, `client ${i}`);
  t.equal(workerSeen.size, 16, 'every stream was observed while open');
  t.same([...workerSeen.values()].filter((slots) => slots.size !== 1), [], 'no stream ever changed worker');
  t.equal(threadChanges, 0, 'no stream was decoded by another thread than its first');
  t.equal(engine.snapshot().modelLoads - loadsBefore, 1, 'the model was loaded once for 4 workers');
});

t.test('a killed worker: its streams get STT_SERVICE_ERROR, a new recording afterwards works', async (t) => {
  const server = await voskServer(t, { MAX_WORKERS: '1' });
  const engine = server.voxgate.stt as VoskEngine;
  const client = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  t.teardown(() => client.close());
  const sessionId = await client.startConversation();
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  await client.next('status_update');
  client.send('audio_stream', { session_id: sessionId, audio_chunk: synthesizeToneAudio(['alpha'], { tailMs: 0 }).toString('base64') });
  await client.next('transcript_partial');
  const replaced = once(engine, 'workerReady');
  await engine.terminateWorker(0);
  const error = await client.next('error');
  t.equal(error.data.error_code, 'STT_SERVICE_ERROR');
  client.send('message_end', { session_id: sessionId });
  await client.next('message_recorded');

  // The pool replaced the worker; once it is ready, the next recording is recognised.
  await replaced;
  const { text } = await record(client, sessionId, () => sendBase64(client, sessionId, synthesizeToneAudio(['bravo'])));
  t.equal(text, 'bravo');
});
