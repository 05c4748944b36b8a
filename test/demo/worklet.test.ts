// The demo page's AudioWorklet processor (src/demo/static/worklet.js), run in a vm context that provides
// what an AudioWorkletGlobalScope does, at the capture rates browsers use. The browser test covers 48 kHz
// end to end; this one measures the resampling itself.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createContext, runInContext } from 'node:vm';
import t from 'tap';
import { PROJECT_ROOT } from '../../src/version.js';

const SOURCE = readFileSync(join(PROJECT_ROOT, 'src/demo/static/worklet.js'), 'utf8');
const BLOCK = 128; // samples per process() call, as in every browser

interface Posted {
  type: string;
  pcm?: ArrayBuffer;
  level?: number;
}

interface Processor {
  port: { onmessage: ((event: { data: unknown }) => void) | null };
  process(inputs: Float32Array[][]): boolean;
}

/** A processor instance at `sampleRateHz`, and everything it posted to the page. */
function processorAt(sampleRateHz: number, frameMs = 40): { processor: Processor; posted: Posted[] } {
  const posted: Posted[] = [];
  let registered: (new (options: unknown) => Processor) | null = null;
  class AudioWorkletProcessor {
    port = { onmessage: null, postMessage: (message: Posted) => posted.push(message) };
  }
  const context = createContext({
    sampleRate: sampleRateHz,
    AudioWorkletProcessor,
    registerProcessor: (name: string, processor: new (options: unknown) => Processor) => {
      if (name === 'pcm16-capture') registered = processor;
    },
  });
  runInContext(SOURCE, context);
  if (registered === null) throw new Error('worklet.js registered no pcm16-capture processor');
  const Registered = registered as new (options: unknown) => Processor;
  return { processor: new Registered({ processorOptions: { frameMs } }), posted };
}

function feed(processor: Processor, signal: Float32Array): void {
  for (let offset = 0; offset < signal.length; offset += BLOCK) processor.process([[signal.subarray(offset, offset + BLOCK)]]);
}

function sine(sampleRateHz: number, frequencyHz: number, seconds: number, amplitude: number): Float32Array {
  return Float32Array.from({ length: Math.round(sampleRateHz * seconds) }, (_, n) => amplitude * Math.sin((2 * Math.PI * frequencyHz * n) / sampleRateHz));
}

function pcmOf(posted: Posted[]): Int16Array {
  const frames = posted.filter((m) => m.type === 'audio').map((m) => new Int16Array(m.pcm!));
  const all = new Int16Array(frames.reduce((sum, f) => sum + f.length, 0));
  let offset = 0;
  for (const frame of frames) {
    all.set(frame, offset);
    offset += frame.length;
  }
  return all;
}

const rms = (samples: ArrayLike<number>, from = 0, to = samples.length): number => {
  let sum = 0;
  for (let i = from; i < to; i++) sum += samples[i]! ** 2;
  return Math.sqrt(sum / (to - from));
};

for (const rate of [16_000, 44_100, 48_000]) {
  t.test(`${rate} Hz in: 16 kHz PCM16 out, 40 ms frames, the tone kept exactly in place`, async (t) => {
    const { processor, posted } = processorAt(rate);
    const amplitude = 0.5;
    feed(processor, sine(rate, 1000, 1, amplitude));
    processor.port.onmessage!({ data: 'flush' });
    t.equal(posted.at(-1)?.type, 'flushed', 'flushed comes after the last frame');
    const frames = posted.filter((m) => m.type === 'audio').map((m) => m.pcm!.byteLength);
    t.ok(frames.slice(0, -1).every((bytes) => bytes === 1280), 'every frame but the last is 640 samples (40 ms)');
    const pcm = pcmOf(posted);
    t.equal(pcm.length, 16_000, 'one second in, one second out');
    // Away from the edges (where the filter window is cut off), the output is the same sine sampled at 16 kHz.
    let worst = 0;
    for (let n = 200; n < pcm.length - 200; n++) {
      const expected = amplitude * 32767 * Math.sin((2 * Math.PI * 1000 * n) / 16_000);
      worst = Math.max(worst, Math.abs(pcm[n]! - expected));
    }
    t.ok(worst < 0.01 * amplitude * 32767, `largest error ${worst.toFixed(0)} LSB is under 1 % of the amplitude`);
    t.ok(posted.some((m) => m.type === 'audio' && m.level! > 0.8), 'the level of a -9 dBFS tone reads high on the meter');
  });
}

t.test('48 kHz in: a 12 kHz tone (above the 8 kHz output Nyquist) does not fold back into the speech band', async (t) => {
  const { processor, posted } = processorAt(48_000);
  feed(processor, sine(48_000, 12_000, 1, 0.5));
  const pcm = pcmOf(posted);
  const leaked = rms(pcm, 200, pcm.length - 200) / (0.5 * 32767 * Math.SQRT1_2);
  t.ok(leaked < 0.01, `alias at ${(leaked * 100).toFixed(3)} % of the input level (under 1 %)`);
});

t.test('full scale is clamped, not wrapped; silence is zero', async (t) => {
  const { processor, posted } = processorAt(48_000);
  feed(processor, new Float32Array(4800).fill(1.5));
  feed(processor, new Float32Array(4800).fill(-1.5));
  feed(processor, new Float32Array(9600));
  processor.port.onmessage!({ data: 'flush' });
  const pcm = pcmOf(posted);
  t.equal(Math.max(...pcm), 32767);
  t.equal(Math.min(...pcm), -32768);
  t.same([...pcm.subarray(-1000)].filter((s) => s !== 0), [], 'silence stays digital silence');
});

t.test('close ends the processor (process returns false)', async (t) => {
  const { processor } = processorAt(48_000);
  t.equal(processor.process([[new Float32Array(BLOCK)]]), true);
  processor.port.onmessage!({ data: 'close' });
  t.equal(processor.process([[new Float32Array(BLOCK)]]), false);
  t.equal(processor.process([[]]), false, 'also with no input (the source was disconnected)');
});
