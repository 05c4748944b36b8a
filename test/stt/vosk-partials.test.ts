// Partial texts are only read while someone listens (SttStreamOptions.wantsPartials): the recogniser's
// partial result is a JSON rendering of its best path, a third of a small model's decoding time; and
// they are read less often as a segment grows (decoder.ts).
import t from 'tap';
import vosk from 'vosk-koffi';
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

t.test('partial texts are read every 200 ms, then every tenth of the segment, at most 1 s apart', async (t) => {
  // A read walks the whole segment's best path: at a fixed interval a long segment's reads would cost
  // more per audio-second the longer it got. The decoder itself, fed one 100 ms piece per batch, with
  // libvosk's partial-result call counted (the real call still made), so each read has its position.
  const modelPath = await toneModel(t);
  setVoskLogLevel(-1);
  const model = SharedVoskModel.acquire(modelPath);
  t.teardown(() => model.release());
  const { libvosk } = vosk;
  const realPartialResult = libvosk.vosk_recognizer_partial_result;
  let reads = 0;
  const counted = (...args: unknown[]): unknown => {
    reads += 1;
    return realPartialResult(...args);
  };
  libvosk.vosk_recognizer_partial_result = Object.assign(counted, { async: realPartialResult.async, info: realPartialResult.info });
  t.teardown(() => {
    libvosk.vosk_recognizer_partial_result = realPartialResult;
  });
  const PIECE = ONE_SECOND / 10;
  const ring = new AudioRing({ streams: 1, regionBytes: PIECE });
  const decoder = new BatchDecoder({ modelAddress: model.address, ring: ring.buffer, streams: 1, threadId: 0, partialIntervalMs: 200 });
  t.teardown(() => decoder.close());
  // A 14 s segment (past the 1 s cap at 10 s), the endpointer's silence, then a short second segment.
  const long = Array.from({ length: 28 }, (_, i) => DEFAULT_TONE_WORDS[i % DEFAULT_TONE_WORDS.length]!);
  const short = ['echo', 'delta', 'charlie', 'bravo'];
  const audio = Buffer.concat([tones(long), tones(short)]);
  decoder.decode({ type: 'decode', slot: 0, seq: 0, ops: Int32Array.of(BatchOp.open, 0, 16000, 1) });

  const texts: string[] = [];
  let segmentPieces = 0;
  let piecesSinceRead = 0;
  let isListening = true;
  let checked = 0;
  let capped = 0;
  let listenedAgain = false;
  for (let offset = 0, seq = 1; offset + PIECE <= audio.length; offset += PIECE, seq++) {
    ring.write(0, audio.subarray(offset, offset + PIECE));
    const length = ring.takePiece(0, PIECE);
    const ops: number[] = [];
    // 8 s into the long segment nobody listens for a second; then someone does again.
    if (segmentPieces === 80 && texts.length === 0) {
      ops.push(BatchOp.partials, 0, 0, 0);
      isListening = false;
    }
    const returns = !isListening && segmentPieces === 90;
    if (returns) {
      ops.push(BatchOp.partials, 0, 1, 0);
      isListening = true;
    }
    ops.push(BatchOp.audio, 0, ring.pieceOffset, length);
    reads = 0;
    const result = decoder.decode({ type: 'decode', slot: 0, seq, ops: Int32Array.from(ops) });
    ring.release(0, length);
    segmentPieces += 1;
    piecesSinceRead += 1;
    const segment = result.events.find((e) => e.type === 'segment');
    if (segment?.type === 'segment') {
      t.equal(reads, 0, 'an endpoint reads the result, not the partial');
      texts.push(segment.text);
      segmentPieces = 0;
      piecesSinceRead = 0;
      continue;
    }
    if (returns) {
      t.equal(reads, 1, 'a listener coming back gets a read at the next piece');
      t.ok(result.events.some((e) => e.type === 'partial'), '... and the current text, changed or not');
      listenedAgain = true;
      piecesSinceRead = 0;
      continue;
    }
    if (!isListening) {
      t.equal(reads, 0, 'no reads while nobody listens');
      continue;
    }
    // Due once 200 ms came, or a tenth of the segment so far if longer, at most 1 s: read at the first
    // piece where it is due, never before.
    const due = Math.max(2, Math.min(segmentPieces * 0.1, 10));
    const isDue = piecesSinceRead >= due - 1e-6;
    if (reads !== (isDue ? 1 : 0)) t.fail(`at ${(segmentPieces / 10).toFixed(1)} s into segment ${texts.length + 1}: ${reads} reads, ${piecesSinceRead} pieces since the last, due after ${due.toFixed(1)}`);
    checked += 1;
    if (isDue) {
      if (due === 10) capped += 1;
      piecesSinceRead = 0;
    }
  }
  const finished = decoder.decode({ type: 'decode', slot: 0, seq: -1, ops: Int32Array.of(BatchOp.finish, 0, 0, 0) });
  const final = finished.events.find((e) => e.type === 'final');
  texts.push(final?.type === 'final' ? final.text : '');
  t.same(texts.filter((text) => text !== ''), [long.join(' '), short.join(' ')], 'two segments, every word');
  t.ok(checked > 150, `every piece checked (${checked})`);
  t.ok(capped >= 3, `reads a second apart past 10 s (${capped})`);
  t.ok(listenedAgain, 'the listener came back mid-segment');
});
