// Declared audio formats: what is honoured, what is refused (AUDIO_FORMAT_UNSUPPORTED), and how a
// recording's stream follows the declarations. Runs on the mock engine, whose transcript states the
// bytes and seconds it received at the stream's rate; libvosk at those rates is in vosk-sample-rate.test.ts.
import t from 'tap';
import { declaredSampleRate, parseWavHeader } from '../../src/stt/audio-format.js';
import type { SttEngine, SttHealth, SttStream, SttStreamOptions } from '../../src/stt/engine.js';
import { FormattedStream } from '../../src/stt/formatted-stream.js';
import { MockSttEngine, mockTranscript } from '../../src/stt/mock-engine.js';
import { SttBusyError } from '../../src/errors.js';

const REFUSED = { code: 'AUDIO_FORMAT_UNSUPPORTED' };

/** A canonical 44-byte WAV header (plus `extraChunk` bytes of a LIST chunk before data when asked). */
function wavHeader(options: { sampleRateHz?: number; channels?: number; bits?: number; encoding?: number; extraChunk?: number } = {}): Buffer {
  const { sampleRateHz = 16000, channels = 1, bits = 16, encoding = 1, extraChunk = 0 } = options;
  const fmt = Buffer.alloc(24);
  fmt.write('fmt ', 0, 'ascii');
  fmt.writeUInt32LE(16, 4);
  fmt.writeUInt16LE(encoding, 8);
  fmt.writeUInt16LE(channels, 10);
  fmt.writeUInt32LE(sampleRateHz, 12);
  fmt.writeUInt32LE((sampleRateHz * channels * bits) / 8, 16);
  fmt.writeUInt16LE((channels * bits) / 8, 20);
  fmt.writeUInt16LE(bits, 22);
  const list = extraChunk === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from('LIST'), u32(extraChunk), Buffer.alloc(extraChunk + (extraChunk % 2), 0x41)]);
  const data = Buffer.concat([Buffer.from('data'), u32(0xffffffff)]); // streaming writers leave the size open
  return Buffer.concat([Buffer.from('RIFF'), u32(0xffffffff), Buffer.from('WAVE'), fmt, list, data]);
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value);
  return bytes;
}

const options = { streamId: 'rec', onPartial: () => {}, onSegment: () => {}, onError: () => {} };

t.test('the app declaration and its synonyms are 16-bit PCM; a stated rate is returned', async (t) => {
  t.equal(declaredSampleRate({ format: 'pcm16', sample_rate: 16000, channels: 1 }), 16000, 'what the app sends with every chunk');
  t.equal(declaredSampleRate({}), null, 'nothing declared');
  t.equal(declaredSampleRate({ format: null, sample_rate: null, channels: null }), null, 'nulls declare nothing');
  for (const format of ['pcm', 'PCM16', 's16le', 'pcm_s16le', 'linear16', 'wav', 'raw']) {
    t.equal(declaredSampleRate({ format, sample_rate: 8000 }), 8000, `format ${format}`);
  }
  t.equal(declaredSampleRate({ sample_rate: 44100 }), 44100);
  t.equal(declaredSampleRate({ sample_rate: 48000 }), 48000);
  // Clients of the replaced backend (which ignored these fields) may send numbers as JSON strings.
  t.equal(declaredSampleRate({ format: 'pcm16', sample_rate: '16000', channels: '1' }), 16000, 'numbers as strings');
  t.equal(declaredSampleRate({ sample_rate: ' 44100 ', channels: '1.0' }), 44100, 'spaces and a .0 too');
});

t.test('formats, rates and channel counts voxgate cannot decode are refused with their field named', async (t) => {
  for (const format of ['opus', 'mp3', 'float32', 'f32le', 'aac', 'mulaw', '', 7, ['pcm16']]) {
    t.throws(() => declaredSampleRate({ format }), { ...REFUSED, details: /^format: / }, `format ${JSON.stringify(format)}`);
  }
  for (const sampleRate of [7999, 48001, 96000, 0, -16000, 16000.5, '16k', '96000', 'abc', true]) {
    t.throws(() => declaredSampleRate({ sample_rate: sampleRate }), { ...REFUSED, details: /^sample_rate: / }, `sample_rate ${JSON.stringify(sampleRate)}`);
  }
  for (const channels of [2, 0, '2', 'mono']) {
    t.throws(() => declaredSampleRate({ channels }), { ...REFUSED, details: /^channels: / }, `channels ${JSON.stringify(channels)}`);
  }
  // A deeply nested value is named by its kind, never walked (it would overflow the stack).
  let nested: unknown = [];
  for (let i = 0; i < 20_000; i++) nested = [nested];
  t.throws(() => declaredSampleRate({ format: nested }), { ...REFUSED, message: 'audio format an array cannot be decoded' });
});

t.test('a WAV header is read and its length skipped; anything but 16-bit mono PCM is refused', async (t) => {
  const header = wavHeader({ sampleRateHz: 44100 });
  t.same(parseWavHeader(Buffer.concat([header, Buffer.alloc(100)])), { sampleRateHz: 44100, dataOffset: 44 });
  t.same(parseWavHeader(Buffer.concat([wavHeader({ extraChunk: 25 }), Buffer.alloc(10)])), { sampleRateHz: 16000, dataOffset: 44 + 8 + 26 }, 'other chunks skipped, padding included');
  t.equal(parseWavHeader(Buffer.alloc(640)), null, 'raw PCM (silence)');
  t.equal(parseWavHeader(Buffer.from('RIFF')), null, 'too short to be a header');
  t.throws(() => parseWavHeader(wavHeader({ channels: 2 })), { ...REFUSED, details: /^wav: expected 1 channel/ });
  t.throws(() => parseWavHeader(wavHeader({ bits: 8 })), { ...REFUSED, details: /^wav: expected 16-bit PCM/ });
  t.throws(() => parseWavHeader(wavHeader({ encoding: 3, bits: 32 })), { ...REFUSED, details: /^wav: expected 16-bit PCM/ }, 'float');
  t.throws(() => parseWavHeader(wavHeader({ sampleRateHz: 96000 })), { ...REFUSED, details: /^wav: expected a sample rate/ });
  t.throws(() => parseWavHeader(header.subarray(0, 30)), { ...REFUSED, details: /^wav: send the whole header/ }, 'cut in the fmt chunk');
});

t.test('a recording opens at the declared rate, or the engine default', async (t) => {
  const engine = new MockSttEngine({ sampleRate: 16000, reason: 'test' });
  const declared = FormattedStream.open(engine, options, { sample_rate: 48000 });
  declared.write(new Uint8Array(96_000));
  t.equal(await declared.finish(), mockTranscript(96_000, 48000), 'one second at 48 kHz');
  const plain = FormattedStream.open(engine, options, null);
  t.equal(plain.sampleRate, 16000);
  t.throws(() => FormattedStream.open(engine, options, { format: 'opus' }), REFUSED, 'refused before a stream is opened');
  t.equal(engine.health().activeStreams, 1, 'only the plain stream is open');
  plain.abort();
});

t.test('the first chunk may still declare the rate; after audio a change is refused once, then dropped silently', async (t) => {
  const engine = new MockSttEngine({ sampleRate: 16000, reason: 'test' });
  const stream = FormattedStream.open(engine, options, null);
  stream.write(new Uint8Array(8000), { format: 'pcm16', sample_rate: 8000, channels: 1 });
  t.equal(stream.sampleRate, 8000, 're-opened at the rate of the first chunk');
  t.equal(engine.health().activeStreams, 1, 'the default-rate stream was closed');
  stream.write(new Uint8Array(8000), { sample_rate: 8000 });
  t.throws(() => stream.write(new Uint8Array(32_000), { sample_rate: 16000 }), { ...REFUSED, details: /^sample_rate: one rate per recording/ });
  stream.write(new Uint8Array(32_000), { sample_rate: 16000 });
  stream.write(new Uint8Array(32_000), { format: 'opus' });
  t.equal(stream.refusedBytes, 96_000, 'later refused chunks are dropped without another error');
  stream.write(new Uint8Array(16_000));
  t.equal(await stream.finish(), mockTranscript(32_000, 8000), 'two seconds at 8 kHz: only the audio at the recording rate');
});

t.test('a WAV header at the start sets the rate and is not decoded as audio', async (t) => {
  const engine = new MockSttEngine({ sampleRate: 16000, reason: 'test' });
  const stream = FormattedStream.open(engine, options, null);
  stream.write(Buffer.concat([wavHeader({ sampleRateHz: 44100 }), Buffer.alloc(88_200)]));
  t.equal(stream.sampleRate, 44100);
  stream.write(Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WAVE'), Buffer.alloc(88_188)]), { sample_rate: 44100 });
  t.equal(await stream.finish(), mockTranscript(2 * 88_200, 44100), 'only the first chunk may carry a header; later bytes are audio');

  const conflicting = FormattedStream.open(engine, options, null);
  t.throws(() => conflicting.write(Buffer.concat([wavHeader({ sampleRateHz: 44100 }), Buffer.alloc(10)]), { sample_rate: 16000 }), REFUSED, 'header and declaration disagree');
  const stereo = FormattedStream.open(engine, options, null);
  t.throws(() => stereo.write(Buffer.concat([wavHeader({ channels: 2 }), Buffer.alloc(10)])), REFUSED);
  conflicting.abort();
  stereo.abort();
});

t.test('a re-open refused by the engine keeps the open stream and reports once', async (t) => {
  const opened: number[] = [];
  let isBusy = false;
  const inner = new MockSttEngine({ sampleRate: 16000, reason: 'test' });
  // The engine edge, scripted: it refuses while the test says it is busy.
  const engine: SttEngine = {
    name: 'mock',
    sampleRate: 16000,
    openStream(streamOptions: SttStreamOptions): SttStream {
      if (isBusy) throw new SttBusyError('speech recognition is at capacity');
      opened.push(streamOptions.sampleRate ?? 0);
      return inner.openStream(streamOptions);
    },
    health: (): SttHealth => inner.health(),
    close: () => inner.close(),
  };
  const stream = FormattedStream.open(engine, options, null);
  isBusy = true;
  t.throws(() => stream.write(new Uint8Array(96_000), { sample_rate: 48000 }), { code: 'STT_SERVICE_BUSY' });
  stream.write(new Uint8Array(96_000), { sample_rate: 48000 });
  t.equal(stream.sampleRate, 16000);
  isBusy = false;
  stream.write(new Uint8Array(96_000), { sample_rate: 48000 });
  t.same(opened, [16000, 48000], 'opened again once the engine had room');
  t.equal(await stream.finish(), mockTranscript(96_000, 48000));
});
