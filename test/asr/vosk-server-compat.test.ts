// Compatibility measured, not assumed: the same clients send the same audio to voxgate's /asr and to
// vosk-server itself (when installed here), and every reply must be the same, frame by frame. Known
// differences (docs/asr.md) are asserted as such.
import { join } from 'node:path';
import t from 'tap';
import { writeSpeakerModel, writeToneModel } from '../../src/vosk-model/tone-model.js';
import { AsrClient, runFireAndForget, runLockstep, transcriptOf, type AsrRun } from '../kit/asr-client.js';
import { startTestServer } from '../kit/start-server.js';
import { tones } from '../stt/vosk-fixture.js';
import { frames } from './libvosk-reference.js';
import { findVoskServer, startVoskServer } from './vosk-server.js';

const install = findVoskServer();
const WORDS = ['alpha', 'charlie', 'bravo'];

interface Case {
  name: string;
  run(url: string): Promise<AsrRun>;
}

const audio = tones(WORDS);
const CASES: Case[] = [
  { name: 'lockstep 8000-byte frames, no config', run: (url) => runLockstep(url, frames(audio, 8000)) },
  { name: 'lockstep 3200-byte frames, words off', run: (url) => runLockstep(url, frames(audio, 3200), { config: { words: false } }) },
  { name: 'lockstep 0.2 s frames, 3 alternatives', run: (url) => runLockstep(url, frames(audio, 6400), { config: { sample_rate: 16000, max_alternatives: 3 } }) },
  { name: 'lockstep 20 ms frames', run: (url) => runLockstep(url, frames(audio, 640)) },
  { name: 'fire-and-forget 64 KiB chunks', run: (url) => runFireAndForget(url, frames(audio, 65536)) },
  {
    name: 'reset after the first word',
    run: (url) => {
      const first = frames(tones(['alpha'], { tailMs: 100 }), 8000);
      return runLockstep(url, [...first, ...frames(tones(['bravo', 'delta']), 8000)], { resets: new Set([first.length - 1]) });
    },
  },
];

t.test('voxgate /asr answers like vosk-server, frame by frame', { skip: typeof install === 'string' ? install : false }, async (t) => {
  if (typeof install === 'string') return;
  const modelPath = t.testdir();
  await writeToneModel(modelPath);
  const peer = await startVoskServer(install, modelPath, join(modelPath, '..', 'vosk-server.log'));
  t.teardown(() => peer.stop());
  // serve.sh runs vosk-server with VOSK_SAMPLE_RATE=16000: the same default here.
  const server = await startTestServer({ STT_ENGINE: 'vosk', VOSK_MODEL_PATH: modelPath, MAX_WORKERS: '2', ASR_SAMPLE_RATE: '16000', ASR_ROOT_PATH: 'true' });
  t.teardown(() => server.close());

  for (const testCase of CASES) {
    t.test(testCase.name, async (t) => {
      const theirs = await testCase.run(peer.url);
      const ours = await testCase.run(server.wsUrl('/'));
      t.same(ours.replies, theirs.replies, 'the same replies, in the same order');
      t.equal(ours.close.code, theirs.close.code, 'the same close code');
      t.equal(ours.protocol, theirs.protocol, 'the same subprotocol');
      t.not(transcriptOf(ours.replies), '', 'something was recognised');
    });
  }

  t.test('known difference: 8 kHz audio into a 16 kHz model', async (t) => {
    const telephone = frames(tones(WORDS, { sampleRateHz: 8000 }), 320);
    // libvosk refuses audio below the model's rate: vosk-server's AcceptWaveform raises and the
    // connection ends with 1011 before any reply.
    const theirs = await AsrClient.connect(peer.url);
    theirs.sendText(JSON.stringify({ config: { sample_rate: 8000 } }));
    theirs.sendAudio(telephone[0]!);
    t.equal((await theirs.closed).code, 1011);
    t.same(theirs.replies, []);
    const ours = await runLockstep(server.wsUrl('/'), telephone, { config: { sample_rate: 8000 } });
    t.equal(transcriptOf(ours.replies), 'alpha charlie bravo', 'voxgate raises the rate first');
    t.equal(ours.replies.length, telephone.length + 1, 'one reply per frame');
  });

  t.test('known difference: an offered subprotocol', async (t) => {
    // vosk-server (python websockets, no subprotocols configured) answers without one, which RFC 6455
    // clients such as ws and browsers refuse; voxgate echoes one offered value (Asterisk offers ws).
    await t.rejects(AsrClient.connect(peer.url, { protocols: ['ws'] }), /subprotocol/);
    const ours = await runLockstep(server.wsUrl('/'), frames(audio, 640), { protocols: ['ws'] });
    t.equal(ours.protocol, 'ws');
    t.equal(transcriptOf(ours.replies), 'alpha charlie bravo');
  });
});

t.test('with VOSK_SPK_MODEL_PATH both servers give the same speaker vectors', { skip: typeof install === 'string' ? install : false }, async (t) => {
  if (typeof install === 'string') return;
  const modelPath = t.testdir();
  await writeToneModel(join(modelPath, 'model'));
  await writeSpeakerModel(join(modelPath, 'spk'));
  const peer = await startVoskServer(install, join(modelPath, 'model'), join(modelPath, 'vosk-server.log'), { VOSK_SPK_MODEL_PATH: join(modelPath, 'spk') });
  t.teardown(() => peer.stop());
  const server = await startTestServer({
    STT_ENGINE: 'vosk',
    VOSK_MODEL_PATH: join(modelPath, 'model'),
    VOSK_SPK_MODEL_PATH: join(modelPath, 'spk'),
    MAX_WORKERS: '1',
    ASR_SAMPLE_RATE: '16000',
  });
  t.teardown(() => server.close());
  const chunks = frames(audio, 8000);
  const theirs = await runLockstep(peer.url, chunks);
  const ours = await runLockstep(server.wsUrl('/asr'), chunks);
  t.same(ours.replies, theirs.replies);
  t.ok(ours.replies.some((reply) => 'spk' in (JSON.parse(reply) as object)), 'results carry spk');
});

t.test('with a grammar (phrase_list) both servers give the same replies', { skip: typeof install === 'string' ? install : false }, async (t) => {
  if (typeof install === 'string') return;
  const modelPath = t.testdir();
  await writeToneModel(join(modelPath, 'model'), { grammar: true });
  const peer = await startVoskServer(install, join(modelPath, 'model'), join(modelPath, 'vosk-server.log'));
  t.teardown(() => peer.stop());
  const server = await startTestServer({ STT_ENGINE: 'vosk', VOSK_MODEL_PATH: join(modelPath, 'model'), MAX_WORKERS: '1', ASR_SAMPLE_RATE: '16000' });
  t.teardown(() => server.close());
  const chunks = frames(audio, 8000);
  for (const phraseList of [['alpha', 'bravo'], ['alpha', 'bravo', '[unk]']]) {
    const theirs = await runLockstep(peer.url, chunks, { config: { phrase_list: phraseList, words: false } });
    const ours = await runLockstep(server.wsUrl('/asr'), chunks, { config: { phrase_list: phraseList, words: false } });
    t.same(ours.replies, theirs.replies, JSON.stringify(phraseList));
    t.not(transcriptOf(ours.replies), '');
  }
});
