// Many streams on a pool of worker threads: isolation, stickiness, one model load, failures, admission.
import t from 'tap';
import { modelLoadCount } from '../../src/stt/vosk/model.js';
import { allWorkersReady, feed, holdEventLoop, openRecorded, startEngine, toneModel, tones, transcript, type RecordedStream } from './vosk-fixture.js';

const VOCABULARY = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];
const ONE_SECOND = 32000;
const TWENTY_MS = 640;

/** A deterministic word sequence per stream index. */
function wordsFor(index: number): string[] {
  const words: string[] = [];
  let state = index * 7919 + 13;
  const count = 3 + (index % 4);
  for (let i = 0; i < count; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    words.push(VOCABULARY[(state >>> 16) % VOCABULARY.length]!);
  }
  return words;
}

t.test('16 parallel streams each get exactly their own words, and never change worker', async (t) => {
  const modelPath = await toneModel(t);
  const engine = await startEngine(t, { modelPath, workers: 2 });
  const streams: RecordedStream[] = [];
  for (let i = 0; i < 16; i++) streams.push(openRecorded(engine, `parallel-${i}`));
  const slots = new Set(engine.snapshot().streams.map((s) => s.slot));
  t.same([...slots].sort(), [0, 1], 'streams are spread over both workers');
  await Promise.all(streams.map((recorded, i) => feed(recorded.stream, tones(wordsFor(i), { gapMs: i % 2 === 0 ? 200 : 700 }), i % 2 === 0 ? ONE_SECOND : TWENTY_MS)));
  await Promise.all(streams.map((recorded) => recorded.firstSegment));
  const mid = engine.snapshot();
  const slotThreads = new Map(mid.slots.map((slot) => [slot.slot, slot.threadId]));
  for (const s of mid.streams) {
    t.equal(s.threadId, slotThreads.get(s.slot), `${s.streamId} is decoded by its slot's thread`);
    t.equal(s.threadChanges, 0, `${s.streamId} never changed thread`);
  }
  const finals = await Promise.all(streams.map((recorded) => recorded.stream.finish()));
  streams.forEach((recorded, i) => {
    t.equal(transcript(recorded, finals[i]!), wordsFor(i).join(' '), `stream ${i}`);
    t.equal(recorded.stream.threadChanges, 0);
  });
});

t.test('4 workers share one model load', async (t) => {
  const modelPath = await toneModel(t);
  const loadsBefore = modelLoadCount();
  const engine = await startEngine(t, { modelPath, workers: 4 });
  const streams: RecordedStream[] = [];
  for (let i = 0; i < 8; i++) streams.push(openRecorded(engine, `shared-${i}`));
  await Promise.all(streams.map((recorded, i) => feed(recorded.stream, tones(wordsFor(i)), ONE_SECOND)));
  const finals = await Promise.all(streams.map((recorded) => recorded.stream.finish()));
  streams.forEach((recorded, i) => t.equal(transcript(recorded, finals[i]!), wordsFor(i).join(' ')));
  const threads = new Set(streams.map((recorded) => recorded.stream.threadId));
  t.equal(threads.size, 4, 'all four workers decoded');
  t.equal(modelLoadCount() - loadsBefore, 1, 'vosk_model_new ran once for four workers');
  t.equal(engine.snapshot().modelLoads, modelLoadCount());
});

t.test('a worker that dies fails only its streams; the pool replaces it', async (t) => {
  const modelPath = await toneModel(t);
  const engine = await startEngine(t, { modelPath, workers: 2 });
  holdEventLoop(t);
  const streams: RecordedStream[] = [];
  for (let i = 0; i < 4; i++) streams.push(openRecorded(engine, `fault-${i}`));
  const words = ['alpha', 'charlie', 'bravo', 'delta'];
  const audio = tones(words);
  const half = ONE_SECOND * 2;
  await Promise.all(streams.map((recorded) => feed(recorded.stream, audio.subarray(0, half), ONE_SECOND)));

  const slotOf = (recorded: RecordedStream): number => recorded.stream.slot;
  const victims = streams.filter((recorded) => slotOf(recorded) === 0);
  const survivors = streams.filter((recorded) => slotOf(recorded) === 1);
  t.equal(victims.length, 2);
  const oldThread = engine.snapshot().slots[0]!.threadId;
  const replaced = new Promise<number>((resolve) => {
    engine.on('workerReady', (slot, threadId) => {
      if (slot === 0) resolve(threadId);
    });
  });

  await engine.terminateWorker(0);
  for (const recorded of victims) {
    const err = await recorded.failed;
    t.match(err, { code: 'STT_SERVICE_ERROR' }, 'the victim gets STT_SERVICE_ERROR');
    await t.rejects(recorded.stream.finish(), { code: 'STT_SERVICE_ERROR' }, 'and finish() rejects');
    recorded.stream.write(audio.subarray(half)); // ignored
  }

  await Promise.all(survivors.map((recorded) => feed(recorded.stream, audio.subarray(half), ONE_SECOND)));
  for (const recorded of survivors) {
    t.equal(transcript(recorded, await recorded.stream.finish()), words.join(' '), 'the other worker\'s streams are unaffected');
    t.same(recorded.errors, []);
  }

  const newThread = await replaced;
  t.not(newThread, oldThread, 'slot 0 has a new thread');
  await allWorkersReady(engine);
  const fresh = openRecorded(engine, 'after-fault');
  t.equal(fresh.stream.slot, 0, 'a new stream goes to the emptiest worker, the replacement');
  await feed(fresh.stream, audio, ONE_SECOND);
  t.equal(transcript(fresh, await fresh.stream.finish()), words.join(' '), 'a new stream works');
  t.equal(fresh.stream.threadId, newThread);
});

t.test('saturation: when every worker is full, openStream throws STT_SERVICE_BUSY', async (t) => {
  const modelPath = await toneModel(t);
  const engine = await startEngine(t, { modelPath, workers: 2, maxStreamsPerWorker: 2 });
  const admitted: RecordedStream[] = [];
  for (let i = 0; i < 4; i++) admitted.push(openRecorded(engine, `admitted-${i}`));
  t.throws(() => openRecorded(engine, 'refused'), { code: 'STT_SERVICE_BUSY', retryable: true });
  t.match(engine.health(), { status: 'degraded', activeStreams: 4 });
  await Promise.all(admitted.map((recorded, i) => feed(recorded.stream, tones(wordsFor(i)), ONE_SECOND)));
  const finals = await Promise.all(admitted.map((recorded) => recorded.stream.finish()));
  admitted.forEach((recorded, i) => t.equal(transcript(recorded, finals[i]!), wordsFor(i).join(' '), 'admitted streams are served'));
  const later = openRecorded(engine, 'later');
  later.stream.abort();
  t.pass('room again once streams finished');
});

t.test('admission knows the cost from the start: with no utilisation to spare, even the first stream is refused', async (t) => {
  const modelPath = await toneModel(t);
  const engine = await startEngine(t, { modelPath, workers: 1, maxUtilisation: 1e-9 });
  t.ok(engine.snapshot().slots[0]!.costPerAudioSecond > 0, 'calibrated at start-up, before any stream');
  t.equal(engine.canAdmit(), false, 'canAdmit predicts the refusal');
  t.throws(() => openRecorded(engine, 'first'), { code: 'STT_SERVICE_BUSY', details: /^capacity: / }, 'refused before any audio was measured');
  t.match(engine.health(), { status: 'degraded', reason: /at capacity: capacity: /, refusing: 'capacity' });
});

t.test('the start-up cost bounds a fresh server: the latency limit starts at the computed capacity', async (t) => {
  const modelPath = await toneModel(t);
  const engine = await startEngine(t, { modelPath, workers: 2 });
  const cost = engine.snapshot().slots[0]!.costPerAudioSecond;
  const perWorker = Math.floor(0.9 / cost + 1e-9);
  t.equal(engine.health().streamLimit, Math.min(2 * perWorker, 2 * 512), 'limit = capacity before anything was learned');
  t.equal(engine.canAdmit(), true);
});

t.test('removed admission options are refused with what replaced them', async (t) => {
  const modelPath = await toneModel(t);
  for (const name of ['cpuBudget', 'maxLagMs', 'maxEventLoopDelayMs']) {
    await t.rejects(startEngine(t, { modelPath, workers: 1, [name]: 1 } as Parameters<typeof startEngine>[1]), { code: 'CONFIG_INVALID', details: new RegExp(`${name}: removed`) });
  }
});

t.test('final texts later than the target lower the number of streams admitted (learned limit)', async (t) => {
  const modelPath = await toneModel(t);
  // A final text needs a round trip to a worker: (nearly) every finish counts as late against 1 ms.
  const engine = await startEngine(t, { modelPath, workers: 2, targetFinishLatencyMs: 1 });
  const capacity = engine.health().streamLimit;
  t.ok(capacity !== null && capacity > 12, `the limit starts at the computed capacity (${capacity})`);
  const streams: RecordedStream[] = [];
  for (let i = 0; i < 12; i++) streams.push(openRecorded(engine, `late-${i}`));
  await Promise.all(streams.map((recorded, i) => feed(recorded.stream, tones(wordsFor(i)), ONE_SECOND)));
  // Finishing while all twelve are open: a clear overload is judged at the tenth late final text.
  const finals = await Promise.all(streams.map((recorded) => recorded.stream.finish()));
  streams.forEach((recorded, i) => t.equal(transcript(recorded, finals[i]!), wordsFor(i).join(' '), 'still recognised'));
  t.equal(engine.health().streamLimit, 10, '90 % of the 12 open then');
  const admitted: RecordedStream[] = [];
  for (let i = 0; i < 10; i++) admitted.push(openRecorded(engine, `admitted-${i}`));
  t.throws(() => openRecorded(engine, 'eleventh'), { code: 'STT_SERVICE_BUSY', details: /^latency-limit: limit 10 streams \(over 1 ms for \d+ of 10 final texts with 12 streams open\)/ });
  t.match(engine.health(), { status: 'degraded', reason: /limit 10 streams/, refusing: 'latency-limit' });
  for (const recorded of admitted) recorded.stream.abort();
});

t.test('a stream whose buffer overflows fails with STT_SERVICE_BUSY, others continue', async (t) => {
  const modelPath = await toneModel(t);
  const engine = await startEngine(t, { modelPath, workers: 1, streamBufferMs: 1000, maxChunkMs: 200 });
  const flood = openRecorded(engine, 'flood');
  const calm = openRecorded(engine, 'calm');
  // Three seconds in one turn: more than the 1 s buffer before the worker could read any of it.
  flood.stream.write(new Uint8Array(ONE_SECOND));
  flood.stream.write(new Uint8Array(ONE_SECOND));
  t.match(await flood.failed, { code: 'STT_SERVICE_BUSY' });
  await t.rejects(flood.stream.finish(), { code: 'STT_SERVICE_BUSY' });
  await feed(calm.stream, tones(['echo', 'alpha']), TWENTY_MS);
  t.equal(transcript(calm, await calm.stream.finish()), 'echo alpha');
});
