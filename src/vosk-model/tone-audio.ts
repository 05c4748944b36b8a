// Deterministic test audio for tone models (vosk-test-model.md §4): digital silence, then one sine per
// word with 10 ms raised-cosine ramps (no clicks, which would spread energy over every mel bin), gaps
// between words, and a tail long enough for the endpointer's 0.5 s trailing-silence rule to fire. Same
// samples as the prototype's test_decode.js for the same parameters.
import { toneFrequencies } from './tone-table.js';

export { DEFAULT_TONE_WORDS, readToneTable, toneFrequencies, toneTable, type ToneTable } from './tone-table.js';

export interface ToneAudioOptions {
  /** Tone per word (default: toneFrequencies() of the default vocabulary; use readToneTable for a model). */
  frequenciesHz?: ReadonlyMap<string, number>;
  sampleRateHz?: number;
  /** Peak amplitude as a fraction of full scale (the model decodes 0.001-0.95). */
  amplitude?: number;
  toneMs?: number;
  gapMs?: number;
  leadMs?: number;
  tailMs?: number;
  /** Uniform noise of +-noiseLsb added to every sample (0 = none; the model tolerates about 300). */
  noiseLsb?: number;
  noiseSeed?: number;
}

const RAMP_MS = 10;
const DEFAULT_NOISE_SEED = 12345;

/** mulberry32: a tiny seeded PRNG, so noisy audio is still the same on every run. Returns [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mono signed 16-bit little-endian PCM saying `words` in tones. */
export function synthesizeToneAudio(words: readonly string[], options: ToneAudioOptions = {}): Buffer {
  const frequenciesHz = options.frequenciesHz ?? toneFrequencies();
  const sampleRateHz = options.sampleRateHz ?? 16000;
  const amplitude = options.amplitude ?? 0.3;
  const noiseLsb = options.noiseLsb ?? 0;
  const samplesIn = (ms: number): number => Math.round((ms * sampleRateHz) / 1000);
  const toneSamples = samplesIn(options.toneMs ?? 300);
  const gapSamples = samplesIn(options.gapMs ?? 200);
  const leadSamples = samplesIn(options.leadMs ?? 300);
  const tailSamples = samplesIn(options.tailMs ?? 1000);
  const rampSamples = samplesIn(RAMP_MS);

  const tones = words.map((word) => {
    const frequencyHz = frequenciesHz.get(word);
    if (frequencyHz === undefined) throw new RangeError(`no tone for word ${JSON.stringify(word)}`);
    return frequencyHz;
  });
  const totalSamples =
    leadSamples + tones.length * toneSamples + Math.max(tones.length - 1, 0) * gapSamples + tailSamples;
  const signal = new Float64Array(totalSamples);
  let start = leadSamples;
  for (const frequencyHz of tones) {
    for (let t = 0; t < toneSamples; t++) {
      let gain = 1;
      if (t < rampSamples) gain = 0.5 - 0.5 * Math.cos((Math.PI * t) / rampSamples);
      else if (t >= toneSamples - rampSamples) gain = 0.5 - 0.5 * Math.cos((Math.PI * (toneSamples - 1 - t)) / rampSamples);
      signal[start + t] = amplitude * gain * Math.sin((2 * Math.PI * frequencyHz * t) / sampleRateHz);
    }
    start += toneSamples + gapSamples;
  }

  const pcm = Buffer.alloc(totalSamples * 2);
  const random = mulberry32(options.noiseSeed ?? DEFAULT_NOISE_SEED);
  for (let i = 0; i < totalSamples; i++) {
    let value = (signal[i] ?? 0) * 32767;
    if (noiseLsb !== 0) value += (random() - 0.5) * 2 * noiseLsb;
    pcm.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(value))), i * 2);
  }
  return pcm;
}
