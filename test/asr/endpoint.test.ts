// The /asr endpoint end to end: real WebSocket clients of each family vosk-server serves -> uWS ->
// worker threads -> libvosk on the tone model. Replies are compared with libvosk driven directly
// (frame by frame), transcripts must be exact.
import { rm } from 'node:fs/promises';
import t, { type Test } from 'tap';
import { signToken } from '../../src/auth/sign-token.js';
import { VoskEngine } from '../../src/stt/vosk/engine.js';
import { writeSpeakerModel, writeToneModel } from '../../src/vosk-model/tone-model.js';
import { AsrClient, runFireAndForget, runLockstep, transcriptOf, wavFile } from '../kit/asr-client.js';
import { startTestServer, type TestServer } from '../kit/start-server.js';
import { silentLogger, tones } from '../stt/vosk-fixture.js';
import { frames, referenceReplies, type ReferenceMessage } from './libvosk-reference.js';

const WORDS = ['alpha', 'charlie', 'bravo'];
const SECRET = 'an-hs256-secret-of-at-least-32-characters!';

async function asrServer(t: Test, env: Record<string, string> = {}): Promise<{ server: TestServer; modelPath: string }> {
  const modelPath = t.testdir();
  await writeToneModel(modelPath);
  const server = await startTestServer({ STT_ENGINE: 'vosk', VOSK_MODEL_PATH: modelPath, MAX_WORKERS: '2', AUTO_SUGGEST: 'false', ...env });
  t.teardown(() => server.close());
  return { server, modelPath };
}

function upgradeFailure(url: string, options: { protocols?: string[]; headers?: Record<string, string> } = {}): Promise<{ statusCode: number; headers: Record<string, string> }> {
  return AsrClient.connect(url, options).then(
    (client) => {
      client.close();
      throw new Error('upgrade unexpectedly accepted');
    },
    (err: { statusCode?: number; headers?: Record<string, string> }) => ({ statusCode: err.statusCode ?? 0, headers: err.headers ?? {} }),
  );
}

function partialsOf(replies: readonly string[]): string[] {
  return replies.map((reply) => (JSON.parse(reply) as { partial?: string }).partial).filter((text): text is string => text !== undefined);
}

t.test('/asr with the vosk engine', async (t) => {
  const { server, modelPath } = await asrServer(t);
  const audio = tones(WORDS);

  t.test('lockstep client (vosk-server test.py): the reply to every frame is libvosk\'s own, eof closes 1000', async (t) => {
    const chunks = frames(audio, 8000);
    const expected = referenceReplies(modelPath, { sampleRate: 16000 }, [...chunks, 'eof']);
    const run = await runLockstep(server.wsUrl('/asr'), chunks, { config: { sample_rate: 16000 } });
    t.same(run.replies, expected, 'frame by frame');
    t.equal(run.replies.length, chunks.length + 1);
    t.equal(run.close.code, 1000);
    t.equal(transcriptOf(run.replies), 'alpha charlie bravo');
    const partials = partialsOf(run.replies).filter((text) => text !== '');
    t.ok(partials.length >= 3, 'partials came');
    for (let i = 1; i < partials.length; i++) t.ok(partials[i]!.startsWith(partials[i - 1]!) || partials[i - 1] === partials[i], `partial ${i} grows`);
    const result = run.replies.map((reply) => JSON.parse(reply) as { result?: Array<{ word: string; start: number; end: number }> }).find((reply) => reply.result !== undefined);
    t.same(result?.result?.map((word) => word.word), WORDS, 'word list with times (words on by default)');
    t.ok(result!.result!.every((word) => word.end > word.start));
  });

  t.test('fire-and-forget client (Node sample): a whole WAV in 64 KiB chunks then eof', async (t) => {
    const file = wavFile(audio, 16000);
    // No config: the WAV header's 16 kHz wins over ASR_SAMPLE_RATE (8000).
    const run = await runFireAndForget(server.wsUrl('/asr/en/'), frames(file, 65536));
    t.equal(run.replies.length, Math.ceil(file.byteLength / 65536) + 1, 'one reply per chunk and one for eof');
    t.equal(transcriptOf(run.replies), 'alpha charlie bravo');
    t.equal(run.close.code, 1000);
  });

  t.test('Asterisk-like client: no config, 8 kHz, subprotocol ws, 20 ms frames', async (t) => {
    const chunks = frames(tones(WORDS, { sampleRateHz: 8000 }), 320);
    const run = await runLockstep(server.wsUrl('/asr'), chunks, { protocols: ['ws'] });
    t.equal(run.protocol, 'ws', 'the offered subprotocol is echoed');
    t.equal(run.replies.length, chunks.length + 1);
    t.equal(transcriptOf(run.replies), 'alpha charlie bravo');
    t.equal(run.close.code, 1000);
  });

  t.test('browser-like client: 48 kHz config, 4096-sample frames sent as captured, path /asr/en/', async (t) => {
    const chunks = frames(tones(WORDS, { sampleRateHz: 48000 }), 8192);
    const client = await AsrClient.connect(server.wsUrl('/asr/en/'));
    client.sendText(JSON.stringify({ config: { sample_rate: 48000 } }));
    // A ScriptProcessor sends every buffer as it fills, never waiting for replies.
    for (const chunk of chunks) client.sendAudio(chunk);
    client.sendText('{"eof":1}');
    const close = await client.closed;
    t.equal(client.replies.length, chunks.length + 1);
    t.equal(transcriptOf(client.replies), 'alpha charlie bravo');
    t.equal(close.code, 1000);
  });

  t.test('config: words off, alternatives, reset', async (t) => {
    const chunks = frames(audio, 8000);
    const noWords = await runLockstep(server.wsUrl('/asr'), chunks, { config: { sample_rate: 16000, words: false } });
    t.same(noWords.replies, referenceReplies(modelPath, { sampleRate: 16000, words: false }, [...chunks, 'eof']));
    const alternatives = await runLockstep(server.wsUrl('/asr'), chunks, { config: { sample_rate: 16000, max_alternatives: 2 } });
    t.same(alternatives.replies, referenceReplies(modelPath, { sampleRate: 16000, maxAlternatives: 2 }, [...chunks, 'eof']));
    t.ok(alternatives.replies.some((reply) => Array.isArray((JSON.parse(reply) as { alternatives?: unknown }).alternatives)));
    const withWords = await runLockstep(server.wsUrl('/asr'), chunks, { config: { sample_rate: 16000, words: true } });
    t.ok(withWords.replies.some((reply) => 'partial_result' in (JSON.parse(reply) as object)), 'partials carry words when the client asked for words');
    const first = frames(tones(['alpha'], { tailMs: 100 }), 8000);
    const second = frames(tones(['bravo']), 8000);
    const reset = await runLockstep(server.wsUrl('/asr'), [...first, ...second], { config: { sample_rate: 16000 }, resets: new Set([first.length - 1]) });
    const messages: ReferenceMessage[] = [...first, 'reset', ...second, 'eof'];
    t.same(reset.replies, referenceReplies(modelPath, { sampleRate: 16000 }, messages));
    t.equal(transcriptOf(reset.replies), 'alpha bravo');
  });

  t.test('odd-sized frames: one reply each, the odd byte kept for the next frame, exact transcript', async (t) => {
    const chunks = frames(audio, 3201);
    const run = await runLockstep(server.wsUrl('/asr'), chunks, { config: { sample_rate: 16000 } });
    t.equal(run.replies.length, chunks.length + 1);
    t.equal(transcriptOf(run.replies), 'alpha charlie bravo');
  });

  t.test('a frame larger than the stream buffer closes 1009 with its code', async (t) => {
    const client = await AsrClient.connect(server.wsUrl('/asr'));
    client.sendText(JSON.stringify({ config: { sample_rate: 16000 } }));
    client.sendAudio(new Uint8Array(200_000));
    const close = await client.closed;
    t.equal(close.code, 1009);
    t.match(close.reason, /^AUDIO_LIMIT_EXCEEDED/);
    t.same(client.replies, []);
  });

  t.test('a text frame that is not config, eof or reset closes 1003 with its code', async (t) => {
    const client = await AsrClient.connect(server.wsUrl('/asr'));
    client.sendText('hello');
    const close = await client.closed;
    t.equal(close.code, 1003);
    t.match(close.reason, /^INVALID_EVENT_DATA/);
  });

  t.test('a plain GET / is still the health answer; / takes no upgrade unless ASR_ROOT_PATH', async (t) => {
    const health = await fetch(`${server.httpUrl}/`);
    t.equal(health.status, 200);
    t.equal(((await health.json()) as { service: string }).service, 'voxgate');
    // Without ASR_ROOT_PATH an upgrade on / is not taken: the health route answers it as a GET.
    const refused = await upgradeFailure(server.wsUrl('/'));
    t.equal(refused.statusCode, 200);
  });
});

t.test('ASR_ROOT_PATH=true serves /asr on / and GET / stays health', async (t) => {
  const { server } = await asrServer(t, { ASR_ROOT_PATH: 'true', ASR_MODEL_NAMES: 'en' });
  const run = await runLockstep(server.wsUrl('/'), frames(tones(WORDS), 8000), { config: { sample_rate: 16000 } });
  t.equal(transcriptOf(run.replies), 'alpha charlie bravo');
  const health = await fetch(`${server.httpUrl}/`);
  t.equal(health.status, 200);
  t.equal((await upgradeFailure(server.wsUrl('/asr/fr/'))).statusCode, 404, 'a model outside ASR_MODEL_NAMES');
  const client = await AsrClient.connect(server.wsUrl('/asr/en'));
  client.sendText(JSON.stringify({ config: { model: '/etc/passwd' } }));
  const close = await client.closed;
  t.equal(close.code, 1008, 'a config model is a name, never a path');
  t.match(close.reason, /^INVALID_EVENT_DATA/);
});

t.test('VOSK_SPK_MODEL_PATH: results carry spk and spk_frames exactly as libvosk gives them', async (t) => {
  // Beside the test's directory: asrServer() writes the tone model into t.testdir(), emptying it.
  const speakerPath = `${t.testdirName}-spk`;
  await writeSpeakerModel(speakerPath);
  t.teardown(() => rm(speakerPath, { recursive: true, force: true }));
  const { server, modelPath } = await asrServer(t, { VOSK_SPK_MODEL_PATH: speakerPath });
  const chunks = frames(tones(WORDS), 8000);
  const run = await runLockstep(server.wsUrl('/asr'), chunks, { config: { sample_rate: 16000 } });
  t.same(run.replies, referenceReplies(modelPath, { sampleRate: 16000, speakerModelPath: speakerPath }, [...chunks, 'eof']));
  const result = run.replies.map((reply) => JSON.parse(reply) as { spk?: number[]; spk_frames?: number }).find((reply) => reply.spk !== undefined);
  t.equal(result?.spk?.length, 8);
  t.ok((result?.spk_frames ?? 0) > 0);
});

t.test('a speaker model libvosk cannot load fails start-up with MODEL_INVALID', async (t) => {
  const modelPath = t.testdir();
  await writeToneModel(modelPath);
  await t.rejects(startTestServer({ STT_ENGINE: 'vosk', VOSK_MODEL_PATH: modelPath, VOSK_SPK_MODEL_PATH: `${modelPath}/no-such-dir` }), { code: 'MODEL_INVALID' });
});

t.test('text frames over the event budget close 1008 (the protocol has no error reply)', async (t) => {
  const { server } = await asrServer(t, { EVENT_RATE_PER_SECOND: '1', EVENT_RATE_BURST: '2' });
  const client = await AsrClient.connect(server.wsUrl('/asr'));
  for (let i = 0; i < 3; i++) client.sendText('{"config": {"sample_rate": 16000}}');
  const close = await client.closed;
  t.equal(close.code, 1008);
  t.match(close.reason, /^RATE_LIMITED/);
});

t.test('busy: at capacity an upgrade gets 503 with Retry-After; a stream refused after its upgrade is closed 1013 before any reply', async (t) => {
  const modelPath = t.testdir();
  await writeToneModel(modelPath);
  const engine = await VoskEngine.create({ modelPath, sampleRate: 16000, workers: 1, maxStreamsPerWorker: 1, logger: silentLogger });
  const server = await startTestServer({}, { stt: engine });
  t.teardown(() => server.close());
  // Both upgrade while the one handle is free; the first to send audio takes it.
  const holder = await AsrClient.connect(server.wsUrl('/asr'));
  t.teardown(() => holder.close());
  const late = await AsrClient.connect(server.wsUrl('/asr'));
  holder.sendText(JSON.stringify({ config: { sample_rate: 16000 } }));
  holder.sendAudio(tones(['alpha']).subarray(0, 3200));
  await holder.nextReply();

  late.sendAudio(tones(['alpha']).subarray(0, 3200));
  const close = await late.closed;
  t.equal(close.code, 1013);
  t.match(close.reason, /^STT_SERVICE_BUSY/);
  t.same(late.replies, [], 'no reply before the refusal');

  const refused = await upgradeFailure(server.wsUrl('/asr'));
  t.equal(refused.statusCode, 503, 'no capacity: refused at the upgrade');
  t.ok(Number(refused.headers['retry-after']) > 0, 'with Retry-After');
});

t.test('the mock engine cannot serve /asr: 503 at the upgrade', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  t.equal((await upgradeFailure(server.wsUrl('/asr'))).statusCode, 503);
});

t.test('QUOTA_RECORDINGS counts /asr streams, and a closed connection gives its stream back', async (t) => {
  const { server } = await asrServer(t, { QUOTA_RECORDINGS: '1' });
  const first = await AsrClient.connect(server.wsUrl('/asr'));
  first.sendText(JSON.stringify({ config: { sample_rate: 16000 } }));
  first.sendAudio(tones(['alpha']).subarray(0, 3200));
  await first.nextReply();
  const second = await AsrClient.connect(server.wsUrl('/asr'));
  second.sendAudio(tones(['alpha']).subarray(0, 3200));
  const refused = await second.closed;
  t.equal(refused.code, 1013);
  t.match(refused.reason, /^QUOTA_EXCEEDED/);
  t.same(second.replies, []);
  // The client goes away mid-stream (no eof): its stream is dropped and no longer counted.
  first.socket.terminate();
  await first.closed;
  await server.waitForLog((line) => line.msg === 'connection closed' && line.connections === 0);
  const third = await runLockstep(server.wsUrl('/asr'), frames(tones(WORDS), 8000), { config: { sample_rate: 16000 } });
  t.equal(transcriptOf(third.replies), 'alpha charlie bravo');
});

t.test('phrase_list over the WebSocket: a grammar recogniser, replies equal to libvosk\'s', async (t) => {
  const modelPath = t.testdir();
  await writeToneModel(modelPath, { grammar: true });
  const server = await startTestServer({ STT_ENGINE: 'vosk', VOSK_MODEL_PATH: modelPath, MAX_WORKERS: '1', ASR_SAMPLE_RATE: '16000' });
  t.teardown(() => server.close());
  const chunks = frames(tones(WORDS), 8000);
  for (const phraseList of [['alpha charlie bravo'], ['alpha', 'bravo', '[unk]']]) {
    const run = await runLockstep(server.wsUrl('/asr'), chunks, { config: { phrase_list: phraseList } });
    t.same(run.replies, referenceReplies(modelPath, { sampleRate: 16000, phraseList }, [...chunks, 'eof']), JSON.stringify(phraseList));
  }
  const unk = await runLockstep(server.wsUrl('/asr'), chunks, { config: { phrase_list: ['alpha', 'bravo', '[unk]'] } });
  t.equal(transcriptOf(unk.replies), 'alpha [unk] bravo', 'words outside the grammar are [unk]');
});

t.test('shutdown closes an open /asr stream with 1001', async (t) => {
  const { server } = await asrServer(t);
  const client = await AsrClient.connect(server.wsUrl('/asr'));
  client.sendText(JSON.stringify({ config: { sample_rate: 16000 } }));
  client.sendAudio(tones(['alpha']).subarray(0, 3200));
  await client.nextReply();
  await server.close();
  t.equal((await client.closed).code, 1001);
  t.equal(server.voxgate.stt.health().activeStreams, 0, 'the stream was dropped before the engine closed');
});

t.test('the origin check applies as on the conversation endpoint', async (t) => {
  const { server } = await asrServer(t, { ALLOWED_ORIGINS: 'https://app.example' });
  t.equal((await upgradeFailure(server.wsUrl('/asr'), { headers: { Origin: 'https://evil.example' } })).statusCode, 403);
  const run = await runLockstep(server.wsUrl('/asr'), frames(tones(WORDS), 8000), { headers: { Origin: 'https://app.example' }, config: { sample_rate: 16000 } });
  t.equal(transcriptOf(run.replies), 'alpha charlie bravo');
});

t.test('credentials apply as on the conversation endpoint', async (t) => {
  const { server } = await asrServer(t, { AUTH_JWT_SECRET: SECRET });
  t.equal((await upgradeFailure(server.wsUrl('/asr'))).statusCode, 401, 'none');
  const conversationOnly = await signToken(SECRET, { sub: 'bob', ttl: '1h', endpoints: ['conversation'] });
  t.equal((await upgradeFailure(server.wsUrl('/asr'), { headers: { Authorization: `Bearer ${conversationOnly}` } })).statusCode, 403, 'not granted asr');
  const asrToken = await signToken(SECRET, { sub: 'alice', ttl: '1h', endpoints: ['asr'] });
  const chunks = frames(tones(WORDS), 8000);
  const viaHeader = await runLockstep(server.wsUrl('/asr'), chunks, { headers: { Authorization: `Bearer ${asrToken}` }, config: { sample_rate: 16000 } });
  t.equal(transcriptOf(viaHeader.replies), 'alpha charlie bravo');
  const viaProtocol = await runLockstep(server.wsUrl('/asr'), chunks, { protocols: ['ws', `voxgate.token.${asrToken}`], config: { sample_rate: 16000 } });
  t.equal(viaProtocol.protocol, 'ws', 'one offered value echoed, never the credential');
  t.equal(transcriptOf(viaProtocol.replies), 'alpha charlie bravo');
});

