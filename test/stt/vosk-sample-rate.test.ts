// Streams at their own sample rates on real libvosk (tone model, 16 kHz features): the words must come
// out right at 8 kHz (below the model's rate: raised by voxgate's upsampler, which libvosk needs), at
// 44.1 and 48 kHz (resampled by libvosk), side by side in one engine; and admission counts a 48 kHz
// stream as three 16 kHz ones.
import t from 'tap';
import { Upsampler, upsampleFactor } from '../../src/stt/vosk/upsampler.js';
import { feed, startEngine, tones, toneModel } from './vosk-fixture.js';
import type { VoskEngine } from '../../src/stt/vosk/engine.js';
import type { VoskStream } from '../../src/stt/vosk/stream.js';

const WORDS = ['echo', 'alpha', 'delta', 'bravo', 'charlie', 'echo'];

/** Opens a stream at `sampleRate`, keeping what it reports. */
function openAt(engine: VoskEngine, streamId: string, sampleRate: number) {
  const segments: string[] = [];
  const errors: unknown[] = [];
  const stream = engine.openStream({
    streamId,
    sampleRate,
    onPartial: () => {},
    onSegment: (text) => segments.push(text),
    onError: (err) => errors.push(err),
  }) as VoskStream;
  return { stream, segments, errors };
}

t.test('8, 16, 44.1 and 48 kHz streams in one engine each give the exact words', async (t) => {
  const engine = await startEngine(t, { modelPath: await toneModel(t), workers: 1 });
  const rates = [8000, 11025, 16000, 44100, 48000];
  const streams = rates.map((rate) => ({ rate, ...openAt(engine, `rate-${rate}`, rate) }));
  t.same(
    streams.map(({ stream }) => [stream.sampleRate, stream.upsampleFactor]),
    [
      [8000, 2],
      [11025, 2],
      [16000, 1],
      [44100, 1],
      [48000, 1],
    ],
    'rates below the model rate are raised by a whole factor, the others go to libvosk as they are',
  );
  // 100 ms writes at each stream's own rate, all streams at once.
  await Promise.all(streams.map(({ rate, stream }) => feed(stream, tones(WORDS, { sampleRateHz: rate }), (rate / 10) * 2)));
  for (const { rate, stream, segments, errors } of streams) {
    const finalText = await stream.finish();
    t.same(errors, [], `${rate} Hz: no error`);
    t.equal([...segments, finalText].filter((text) => text !== '').join(' '), WORDS.join(' '), `${rate} Hz: the exact words`);
  }
});

t.test('a rate outside 8..48 kHz is refused before a stream is opened', async (t) => {
  const engine = await startEngine(t, { modelPath: await toneModel(t), workers: 1 });
  for (const sampleRate of [7999, 48_001, 96_000, 16000.5]) {
    t.throws(() => engine.openStream({ streamId: 'x', sampleRate, onPartial: () => {}, onSegment: () => {}, onError: () => {} }), {
      code: 'AUDIO_FORMAT_UNSUPPORTED',
    });
  }
  t.equal(engine.health().activeStreams, 0);
});

t.test('admission cost scales with the rate: a worker holds a third as many 48 kHz streams as 16 kHz ones', async (t) => {
  const modelPath = await toneModel(t);
  // A worker capacity of about thirty calibrated 16 kHz streams (the calibration is measured again by
  // the engine under test, so the count is only about thirty; the ratio below holds whatever it is).
  const probe = await startEngine(t, { modelPath, workers: 1 });
  const costPerStream = probe.snapshot().slots[0]!.costPerAudioSecond;
  await probe.destroy();
  t.ok(costPerStream > 0, `calibrated cost ${costPerStream}`);
  const engine = await startEngine(t, { modelPath, workers: 1, maxUtilisation: Math.min(1, 30 * costPerStream) });
  /** Opens streams at `sampleRate` until the engine refuses one; returns how many it admitted, once they are closed. */
  const admitted = async (sampleRate: number): Promise<number> => {
    const streams: VoskStream[] = [];
    try {
      for (;;) {
        streams.push(engine.openStream({ streamId: `s-${sampleRate}-${streams.length}`, sampleRate, onPartial: () => {}, onSegment: () => {}, onError: () => {} }) as VoskStream);
      }
    } catch (err) {
      t.match(err, { code: 'STT_SERVICE_BUSY' }, `${sampleRate} Hz: refused at capacity`);
    }
    // A handle is free once its final text is back (an abort would still hold it until the worker confirms).
    await Promise.all(streams.map((stream) => stream.finish()));
    return streams.length;
  };
  const at16k = await admitted(16000);
  t.ok(at16k >= 3, `${at16k} streams at 16 kHz`);
  // Each rate admits floor(budget / (weight * cost)) streams, so the counts relate exactly.
  t.equal(await admitted(48000), Math.floor(at16k / 3), '48 kHz streams count three times');
  t.equal(await admitted(8000), at16k, '8 kHz decodes as 16 kHz once raised: the same cost');
});

t.test('the upsampler passes the band below the input Nyquist frequency and removes its mirror image', async (t) => {
  t.equal(upsampleFactor(8000, 16000), 2);
  t.equal(upsampleFactor(12000, 16000), 2);
  t.equal(upsampleFactor(16000, 16000), 1);
  t.equal(upsampleFactor(48000, 16000), 1);
  t.equal(upsampleFactor(8000, 8000), 1, 'an 8 kHz model needs nothing');
  const inputRate = 8000;
  const toneHz = 3000;
  const input = new Int16Array(inputRate);
  for (let i = 0; i < input.length; i++) input[i] = Math.round(10_000 * Math.sin((2 * Math.PI * toneHz * i) / inputRate));
  // In pieces of odd sizes: the filter state must carry across calls.
  const upsampler = new Upsampler(2);
  const output = new Int16Array(input.length * 2);
  for (let at = 0, piece = 1; at < input.length; at += piece, piece = (piece * 7 + 3) % 997) {
    const length = Math.min(piece, input.length - at);
    const out = new Int16Array(length * 2);
    upsampler.process(input.subarray(at, at + length), out);
    output.set(out, at * 2);
  }
  const amplitudeAt = (hz: number): number => {
    // One DFT bin over the steady middle of the signal.
    let re = 0;
    let im = 0;
    const from = 1000;
    const to = output.length - 1000;
    for (let n = from; n < to; n++) {
      re += output[n]! * Math.cos((2 * Math.PI * hz * n) / (2 * inputRate));
      im -= output[n]! * Math.sin((2 * Math.PI * hz * n) / (2 * inputRate));
    }
    return (2 * Math.hypot(re, im)) / (to - from);
  };
  const kept = amplitudeAt(toneHz);
  const image = amplitudeAt(inputRate - toneHz);
  t.ok(kept > 9000 && kept < 11_000, `the tone keeps its amplitude (${kept.toFixed(0)} of 10000)`);
  t.ok(image < 100, `its image at ${inputRate - toneHz} Hz is removed (${image.toFixed(1)})`);
});
