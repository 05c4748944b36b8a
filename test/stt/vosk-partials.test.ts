// Partial texts are only read while someone listens (SttStreamOptions.wantsPartials): the recogniser's
// partial result is a JSON rendering of its best path, a third of a small model's decoding time; and
// they are read less often as a segment grows (decoder.ts).
import t from 'tap';
import { BatchOp } from '../../workers/messages.js';
import { AudioRing } from '../../src/stt/vosk/audio-ring.js';
import { BatchDecoder } from '../../src/stt/vosk/decoder.js';
import { SharedVoskModel, setVoskLogLevel } from '../../src/stt/vosk/model.js';
import { DEFAULT_TONE_WORDS } from '../../src/vosk-model/tone-audio.js';
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

t.test('partial texts are read less often as a segment grows: a tenth of it, at most a second apart', async (t) => {
  // A read walks the whole segment's best path: read every 200 ms, a long segment's reads would cost more
  // per audio-second the longer it got. The decoder itself, fed 100 ms per batch, so every partial text
  // is placed at the audio position it was read at.
  const modelPath = await toneModel(t);
  setVoskLogLevel(-1);
  const model = SharedVoskModel.acquire(modelPath);
  t.teardown(() => model.release());
  const piece = ONE_SECOND / 10;
  const ring = new AudioRing({ streams: 1, regionBytes: piece });
  const decoder = new BatchDecoder({ modelAddress: model.address, ring: ring.buffer, streams: 1, threadId: 0, partialIntervalMs: 200 });
  t.teardown(() => decoder.close());
  const words = Array.from({ length: 28 }, (_, i) => DEFAULT_TONE_WORDS[i % DEFAULT_TONE_WORDS.length]!);
  const audio = tones(words);
  decoder.decode({ type: 'decode', slot: 0, seq: 0, ops: Int32Array.of(BatchOp.open, 0, 16000, 1) });
  const reads: number[] = [];
  let segmentStart = 0;
  const segments: string[] = [];
  for (let offset = 0, seq = 1; offset + piece <= audio.length; offset += piece, seq++) {
    ring.write(0, audio.subarray(offset, offset + piece));
    const length = ring.takePiece(0, piece);
    const result = decoder.decode({ type: 'decode', slot: 0, seq, ops: Int32Array.of(BatchOp.audio, 0, ring.pieceOffset, length) });
    ring.release(0, length);
    const at = (offset + piece) / ONE_SECOND;
    for (const event of result.events) {
      if (event.type === 'partial') reads.push(at - segmentStart);
      if (event.type === 'segment') {
        segments.push(event.text);
        segmentStart = at;
        reads.push(Number.NaN);
      }
    }
  }
  const final = decoder.decode({ type: 'decode', slot: 0, seq: -1, ops: Int32Array.of(BatchOp.finish, 0, 0, 0) });
  const finalText = final.events.find((e) => e.type === 'final');
  t.equal([...segments, finalText?.type === 'final' ? finalText.text : ''].filter((s) => s !== '').join(' '), words.join(' '));
  // Partial texts are only reported when they changed, so gaps can be longer than the read interval,
  // never shorter; a tone word is 500 ms, so the text changes at least that often.
  let late = 0;
  for (let i = 1; i < reads.length; i++) {
    const [previous, current] = [reads[i - 1]!, reads[i]!];
    if (Number.isNaN(previous) || Number.isNaN(current)) continue;
    const interval = Math.max(0.2, Math.min(previous * 0.1, 1));
    t.ok(current - previous >= interval - 0.1 - 1e-9, `read at ${current.toFixed(1)} s, ${(current - previous).toFixed(1)} s after the one at ${previous.toFixed(1)} s`);
    if (previous >= 8) late += 1;
  }
  t.ok(late >= 2, `texts still come deep into the segment (${late} after 8 s)`);
  t.ok(reads.filter((r) => r < 2).length >= 3, 'every few hundred ms at first');
});
