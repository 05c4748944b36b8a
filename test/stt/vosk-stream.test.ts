// One stream at a time through the real libvosk on a generated tone model.
import t from 'tap';
import { feed, openRecorded, startEngine, toneModel, tones, transcript } from './vosk-fixture.js';

const WORDS = ['alpha', 'charlie', 'bravo'];
const ONE_SECOND = 32000;
const TWENTY_MS = 640;

t.test('tone model, worker threads', async (t) => {
  const modelPath = await toneModel(t);
  const engine = await startEngine(t, { modelPath, workers: 2 });

  t.test('1 s chunks give the exact text and partials word by word', async (t) => {
    const recorded = openRecorded(engine, 'one-second');
    await feed(recorded.stream, tones(WORDS), ONE_SECOND);
    const finalText = await recorded.stream.finish();
    t.equal(transcript(recorded, finalText), 'alpha charlie bravo');
    t.same(recorded.partials, ['alpha', 'alpha charlie', 'alpha charlie bravo']);
    t.same(recorded.errors, []);
  });

  t.test('20 ms frames give the exact text and partials word by word', async (t) => {
    const recorded = openRecorded(engine, 'twenty-ms');
    await feed(recorded.stream, tones(WORDS), TWENTY_MS);
    const finalText = await recorded.stream.finish();
    t.equal(transcript(recorded, finalText), 'alpha charlie bravo');
    t.same(recorded.partials, ['alpha', 'alpha charlie', 'alpha charlie bravo']);
    t.equal(recorded.stream.receivedBytes, tones(WORDS).byteLength);
  });

  t.test('audio without a trailing pause: finish() returns the text after the last segment', async (t) => {
    const recorded = openRecorded(engine, 'no-tail');
    await feed(recorded.stream, tones(WORDS, { tailMs: 100 }), ONE_SECOND);
    const finalText = await recorded.stream.finish();
    t.same(recorded.segments, [], 'no endpoint without trailing silence');
    t.equal(finalText, 'alpha charlie bravo');
  });

  t.test('a long recording with pauses over 0.5 s loses no word across its endpoints', async (t) => {
    const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'echo', 'delta', 'charlie', 'bravo', 'alpha', 'charlie', 'echo'];
    const recorded = openRecorded(engine, 'long');
    await feed(recorded.stream, tones(words, { gapMs: 800, tailMs: 300 }), ONE_SECOND);
    const finalText = await recorded.stream.finish();
    t.ok(recorded.segments.length >= 5, `several endpoints (${recorded.segments.length} segments)`);
    t.equal(transcript(recorded, finalText), words.join(' '));
  });

  t.test('odd byte counts: a trailing odd byte is kept for the next write', async (t) => {
    const recorded = openRecorded(engine, 'odd');
    await feed(recorded.stream, tones(WORDS), 3333);
    const finalText = await recorded.stream.finish();
    t.equal(transcript(recorded, finalText), 'alpha charlie bravo');
    t.equal(recorded.stream.receivedBytes, tones(WORDS).byteLength);
  });

  t.test('random non-speech bytes and a lone odd byte break nothing', async (t) => {
    const noise = new Uint8Array(48_001);
    let seed = 7;
    for (let i = 0; i < noise.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      noise[i] = seed >>> 24;
    }
    const recorded = openRecorded(engine, 'noise');
    await feed(recorded.stream, noise, 777);
    recorded.stream.write(Uint8Array.of(1));
    await recorded.stream.finish();
    t.same(recorded.errors, [], 'no error');
    // The engine still decodes a clean stream afterwards.
    const clean = openRecorded(engine, 'after-noise');
    await feed(clean.stream, tones(WORDS), ONE_SECOND);
    t.equal(transcript(clean, await clean.stream.finish()), 'alpha charlie bravo');
  });

  t.test('finish() on an empty stream resolves with an empty text; abort() is idempotent', async (t) => {
    const empty = openRecorded(engine, 'empty');
    t.equal(await empty.stream.finish(), '');
    t.equal(await empty.stream.finish(), '', 'finish() twice returns the same');
    const dropped = openRecorded(engine, 'dropped');
    dropped.stream.write(tones(['alpha']));
    dropped.stream.abort();
    dropped.stream.abort();
    dropped.stream.write(tones(['alpha']));
    t.equal(await dropped.stream.finish(), '');
    t.same(dropped.errors, []);
  });

  t.test('health reports the engine and streams', async (t) => {
    const recorded = openRecorded(engine, 'health');
    const health = engine.health();
    t.match(health, { engine: 'vosk', status: 'healthy', reason: null, workers: 2, modelPath: engine.modelPath });
    t.ok(health.activeStreams >= 1);
    recorded.stream.abort();
  });
});

t.test('in-process mode (workers: 0) runs the same stream code on the main thread', async (t) => {
  const modelPath = await toneModel(t);
  const engine = await startEngine(t, { modelPath, workers: 0 });
  const recorded = openRecorded(engine, 'in-process');
  await feed(recorded.stream, tones(WORDS), TWENTY_MS);
  const finalText = await recorded.stream.finish();
  t.equal(transcript(recorded, finalText), 'alpha charlie bravo');
  t.same(recorded.partials, ['alpha', 'alpha charlie', 'alpha charlie bravo']);
  t.equal(engine.health().workers, 0);
});

t.test('close() waits for open streams to finish, then refuses new ones', async (t) => {
  const modelPath = await toneModel(t);
  const engine = await startEngine(t, { modelPath, workers: 1 });
  const recorded = openRecorded(engine, 'draining');
  let isClosed = false;
  const closed = engine.close().then(() => {
    isClosed = true;
  });
  t.throws(() => openRecorded(engine, 'late'), { code: 'STT_SERVICE_ERROR' });
  await feed(recorded.stream, tones(WORDS), ONE_SECOND);
  t.notOk(isClosed, 'still open while a stream is');
  t.equal(transcript(recorded, await recorded.stream.finish()), 'alpha charlie bravo');
  await closed;
  t.equal(engine.health().status, 'unavailable');
});
