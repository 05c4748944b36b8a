import { setTimeout as delay } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { synthesizeToneAudio } from '../../src/vosk-model/tone-audio.js';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';
import { startTestServer, type TestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

// Declared audio formats end to end (issue 12 #8), on real libvosk with the tone model: the app's own
// frames keep working, declared rates give the right words, and what voxgate cannot decode is refused
// with one AUDIO_FORMAT_UNSUPPORTED instead of silently becoming wrong text.

const WORDS = ['alpha', 'delta', 'echo', 'bravo'];
/**
 * Audio is sent at twice the speed it is spoken, as a live client would send it (at most): the rings hold
 * a few seconds per stream and a client far ahead of real time is rightly refused as "too far behind",
 * which on a loaded machine happened to this test when it sent one second of audio every 50 ms.
 */
const SPEED_OVER_REAL_TIME = 2;

async function voskClient(t: Test): Promise<{ server: TestServer; client: TestClient; sessionId: string }> {
  const modelDir = t.testdir();
  await writeToneModel(modelDir);
  const server = await startTestServer({ STT_ENGINE: 'vosk', VOSK_MODEL_PATH: modelDir, MAX_WORKERS: '1', AUTO_SUGGEST: 'false' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());
  return { server, client, sessionId: await client.startConversation() };
}

/** One-second audio_stream chunks with the given extras (the app adds format, sample_rate, channels). */
async function sendChunks(client: TestClient, sessionId: string, pcm: Buffer, bytesPerSecond: number, extras: Record<string, unknown> = {}): Promise<void> {
  for (let offset = 0; offset < pcm.length; offset += bytesPerSecond) {
    const chunk = pcm.subarray(offset, offset + bytesPerSecond);
    client.send('audio_stream', { session_id: sessionId, audio_chunk: chunk.toString('base64'), ...extras });
    await delay((chunk.length / bytesPerSecond) * (1000 / SPEED_OVER_REAL_TIME));
  }
}

/** message_start (with `declared` fields), the audio, message_end; the transcript and the errors in between. */
async function record(t: Test, client: TestClient, sessionId: string, declared: Record<string, unknown>, send: () => Promise<void>) {
  const from = client.received.length;
  client.send('message_start', { session_id: sessionId, sender: 'other', ...declared });
  t.equal((await client.next()).type, 'status_update', 'message_start accepted');
  await send();
  client.send('message_end', { session_id: sessionId });
  const recorded = await client.next('message_recorded');
  const errors = client.received.slice(from).filter((event) => event.type === 'error');
  return { text: recorded.data.message_content as string, errors };
}

function wavHeader(sampleRateHz: number): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(0xffffffff, 4);
  header.write('WAVEfmt ', 8, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(sampleRateHz, 24);
  header.writeUInt32LE(sampleRateHz * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(0xffffffff, 40);
  return header;
}

t.test('the app exact frames (pcm16, 16000, mono on every chunk) are recognised as before', async (t) => {
  const { client, sessionId } = await voskClient(t);
  const pcm = synthesizeToneAudio(WORDS);
  const result = await record(t, client, sessionId, {}, () => sendChunks(client, sessionId, pcm, 32_000, { duration: 1, format: 'pcm16', sample_rate: 16000, channels: 1 }));
  t.equal(result.text, WORDS.join(' '));
  t.same(result.errors, []);
});

t.test('a rate declared at message_start or on the first chunk, or by a WAV header, gives the right words', async (t) => {
  const { client, sessionId } = await voskClient(t);

  const at48k = synthesizeToneAudio(WORDS, { sampleRateHz: 48000 });
  const binary = await record(t, client, sessionId, { sample_rate: 48000, format: 'pcm16', channels: 1 }, async () => {
    // Binary frames carry no declaration: they use message_start's (20 ms frames).
    for (let offset = 0; offset < at48k.length; offset += 1920) {
      client.sendRaw(at48k.subarray(offset, offset + 1920), true);
      if ((offset / 1920) % 50 === 49) await delay(1000 / SPEED_OVER_REAL_TIME);
    }
  });
  t.equal(binary.text, WORDS.join(' '), '48 kHz declared at message_start, binary frames');
  t.same(binary.errors, []);

  const at8k = synthesizeToneAudio(WORDS, { sampleRateHz: 8000 });
  const telephone = await record(t, client, sessionId, {}, () => sendChunks(client, sessionId, at8k, 16_000, { format: 'pcm16', sample_rate: 8000, channels: 1 }));
  t.equal(telephone.text, WORDS.join(' '), '8 kHz declared on audio_stream');
  t.same(telephone.errors, []);

  const at44k = synthesizeToneAudio(WORDS, { sampleRateHz: 44100 });
  const wav = await record(t, client, sessionId, { format: 'wav' }, () => sendChunks(client, sessionId, Buffer.concat([wavHeader(44100), at44k]), 88_200));
  t.equal(wav.text, WORDS.join(' '), '44.1 kHz from a WAV header; the header is not decoded as audio');
  t.same(wav.errors, []);
});

t.test('a format voxgate cannot decode is refused at message_start, and nothing starts', async (t) => {
  const { client, sessionId } = await voskClient(t);
  for (const declared of [{ format: 'opus' }, { format: 'mp3' }, { format: 'float32' }, { sample_rate: 96000 }, { channels: 2 }]) {
    client.send('message_start', { session_id: sessionId, sender: 'other', ...declared });
    const reply = await client.next();
    t.match(reply, { type: 'error', data: { session_id: sessionId, error_code: 'AUDIO_FORMAT_UNSUPPORTED', message: '不支持的音频格式' } }, JSON.stringify(declared));
  }
  client.send('message_end', { session_id: sessionId });
  t.match(await client.next(), { type: 'error', data: { error_code: 'NOT_RECORDING' } }, 'no recording was opened');
});

t.test('a wrong format on audio_stream or a rate change mid-recording is one error; the audio before it is kept', async (t) => {
  const { client, sessionId } = await voskClient(t);
  const first = synthesizeToneAudio(['alpha', 'bravo'], { tailMs: 300 });
  const result = await record(t, client, sessionId, {}, async () => {
    await sendChunks(client, sessionId, first, 32_000, { format: 'pcm16', sample_rate: 16000 });
    // The client switches to 48 kHz, then to opus, for five seconds: one error, not one per chunk.
    await sendChunks(client, sessionId, Buffer.alloc(3 * 96_000), 96_000, { sample_rate: 48000 });
    await sendChunks(client, sessionId, Buffer.alloc(2 * 32_000), 32_000, { format: 'opus' });
  });
  t.equal(result.text, 'alpha bravo');
  t.equal(result.errors.length, 1, 'exactly one error event for the recording');
  t.match(result.errors[0], { data: { error_code: 'AUDIO_FORMAT_UNSUPPORTED', message: '不支持的音频格式', details: /changed from 16000 Hz to 48000 Hz/ } });

  const opus = await record(t, client, sessionId, {}, () => sendChunks(client, sessionId, Buffer.alloc(3 * 32_000), 32_000, { format: 'opus' }));
  t.equal(opus.errors.length, 1, 'the next recording reports its own refusal, once');
  t.equal(opus.text, '', 'nothing was decoded as noise');
});
