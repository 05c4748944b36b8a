// Partial texts are only read while someone listens (SttStreamOptions.wantsPartials): the recogniser's
// partial result is a JSON rendering of its best path, a third of a small model's decoding time.
import t from 'tap';
import type { VoxgateError } from '../../src/errors.js';
import type { VoskStream } from '../../src/stt/vosk/stream.js';
import { feed, startEngine, tones, toneModel } from './vosk-fixture.js';

const ONE_SECOND = 32_000;
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'alpha', 'bravo'];

function open(engine: Awaited<ReturnType<typeof startEngine>>, streamId: string, wants: { now: boolean } | null) {
  const partials: string[] = [];
  const segments: string[] = [];
  const errors: VoxgateError[] = [];
  const stream = engine.openStream({
    streamId,
    ...(wants === null ? {} : { wantsPartials: () => wants.now }),
    onPartial: (text) => partials.push(text),
    onSegment: (text) => segments.push(text),
    onError: (err) => errors.push(err),
  }) as VoskStream;
  return { stream, partials, segments, errors };
}

t.test('nobody listening: no partial texts, the transcript is the same', async (t) => {
  const modelPath = await toneModel(t);
  const engine = await startEngine(t, { modelPath, workers: 1 });
  const audio = tones(WORDS);
  const listened = open(engine, 'listened', null);
  const quiet = open(engine, 'quiet', { now: false });
  await Promise.all([feed(listened.stream, audio, ONE_SECOND / 5), feed(quiet.stream, audio, ONE_SECOND / 5)]);
  const [listenedFinal, quietFinal] = await Promise.all([listened.stream.finish(), quiet.stream.finish()]);
  t.ok(listened.partials.length > 0, `partials by default (${listened.partials.length})`);
  t.same(quiet.partials, [], 'none while nobody listens');
  const text = (r: { segments: string[] }, final: string): string => [...r.segments, final].filter((s) => s !== '').join(' ');
  t.equal(text(listened, listenedFinal), WORDS.join(' '));
  t.equal(text(quiet, quietFinal), WORDS.join(' '), 'segments and final text unaffected');
  t.same([listened.errors, quiet.errors], [[], []]);
});

t.test('a listener arriving mid-recording gets partial texts from then on', async (t) => {
  const modelPath = await toneModel(t);
  const engine = await startEngine(t, { modelPath, workers: 1 });
  const audio = tones(WORDS);
  const wants = { now: false };
  const recorded = open(engine, 'late-listener', wants);
  // Whole 100 ms pieces (the engine's minimum), so that the first half is sent in full.
  const half = Math.floor(audio.length / 2 / 3200) * 3200;
  await feed(recorded.stream, audio.subarray(0, half), ONE_SECOND / 5);
  // The first half is decoded once its batches came back: the stream's 4 s ring is empty again.
  await recorded.stream.whenWritable(ONE_SECOND * 4);
  t.same(recorded.partials, [], 'nothing while nobody listened');
  wants.now = true;
  await feed(recorded.stream, audio.subarray(half), ONE_SECOND / 5);
  const final = await recorded.stream.finish();
  t.ok(recorded.partials.length > 0, `partials once someone listens (${recorded.partials.length})`);
  t.equal([...recorded.segments, final].filter((s) => s !== '').join(' '), WORDS.join(' '));
});

t.test('a wantsPartials that throws counts as listening (logged), the stream goes on', async (t) => {
  const modelPath = await toneModel(t);
  const engine = await startEngine(t, { modelPath, workers: 1 });
  const partials: string[] = [];
  const segments: string[] = [];
  const stream = engine.openStream({
    streamId: 'throws',
    wantsPartials: () => {
      throw new Error('boom');
    },
    onPartial: (text) => partials.push(text),
    onSegment: (text) => segments.push(text),
    onError: () => {},
  }) as VoskStream;
  await feed(stream, tones(['alpha', 'bravo', 'charlie']), ONE_SECOND / 5);
  const final = await stream.finish();
  t.ok(partials.length > 0, 'read as if someone listened');
  t.equal([...segments, final].filter((s) => s !== '').join(' '), 'alpha bravo charlie');
});
