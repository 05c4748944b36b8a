// Which tone stands for which word: the table a tone model writes to tones.json, and computes again
// for anyone who needs test audio without reading a model directory.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { z } from 'zod';

import { ModelInvalidError } from '../errors.js';
import { roundedExp, roundedLog } from './exact-math.js';

export const DEFAULT_TONE_WORDS: readonly string[] = Object.freeze(['alpha', 'bravo', 'charlie', 'delta', 'echo']);

/** Mel bins (0-based) used by word 1, 2, ...: at least 5 bins apart, so neighbouring tones never blur. */
const WORD_MEL_BINS = [8, 13, 18, 23, 28, 33, 11, 16, 21, 26, 31];
export const MAX_TONE_WORDS = WORD_MEL_BINS.length;

const SAMPLE_RATE_HZ = 16000;
const NUM_MEL_BINS = 40;
const LOW_FREQ_HZ = 20;
const HIGH_FREQ_HZ = 7600;

export interface ToneTable {
  sampleRateHz: number;
  /** Tone frequency per word, in vocabulary order, rounded to 1 mHz as tones.json stores it. */
  frequenciesHz: ReadonlyMap<string, number>;
  /** Mel filter (0-based) each word's tone sits on. */
  melBins: ReadonlyMap<string, number>;
}

// Same libm-exact log/exp as the prototype: V8's Math.exp differs in the last bit for 2 of the 40 bins.
function melScale(frequencyHz: number): number {
  return 1127 * roundedLog(1 + frequencyHz / 700);
}

function inverseMelScale(mel: number): number {
  return 700 * (roundedExp(mel / 1127) - 1);
}

/** Centre frequency of mel filter `bin` for Kaldi's 40-bin, 20-7600 Hz filterbank. */
function melCentreHz(bin: number): number {
  const low = melScale(LOW_FREQ_HZ);
  const step = (melScale(HIGH_FREQ_HZ) - low) / (NUM_MEL_BINS + 1);
  return inverseMelScale(low + (bin + 1) * step);
}

export function toneTable(words: readonly string[] = DEFAULT_TONE_WORDS): ToneTable {
  if (words.length > MAX_TONE_WORDS) {
    throw new ModelInvalidError(`a tone vocabulary has at most ${MAX_TONE_WORDS} words, got ${words.length}`);
  }
  const frequenciesHz = new Map<string, number>();
  const melBins = new Map<string, number>();
  words.forEach((word, k) => {
    const bin = WORD_MEL_BINS[k] ?? 0;
    frequenciesHz.set(word, Number(melCentreHz(bin).toFixed(3)));
    melBins.set(word, bin);
  });
  return { sampleRateHz: SAMPLE_RATE_HZ, frequenciesHz, melBins };
}

/** Tone frequency (Hz) per word, as a model generated for `words` (default: the five default words) uses. */
export function toneFrequencies(words: readonly string[] = DEFAULT_TONE_WORDS): ReadonlyMap<string, number> {
  return toneTable(words).frequenciesHz;
}

// --- tones.json --------------------------------------------------------------------------------------

/** A JSON string as Python's json.dump writes it (ensure_ascii: everything outside ' '..'~' escaped). */
function pythonJsonString(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function pythonFloat(x: number): string {
  return Number.isInteger(x) ? `${x}.0` : String(x);
}

/** tones.json exactly as the prototype's json.dump(indent=1) writes it (no trailing newline). */
export function encodeToneTable(table: ToneTable): string {
  const entries = (values: ReadonlyMap<string, number>, format: (x: number) => string): string =>
    [...values].map(([word, value]) => `  ${pythonJsonString(word)}: ${format(value)}`).join(',\n');
  return [
    '{',
    ` "sample_rate": ${table.sampleRateHz},`,
    ' "words": {',
    entries(table.frequenciesHz, pythonFloat),
    ' },',
    ' "mel_bins": {',
    entries(table.melBins, String),
    ' }',
    '}',
  ].join('\n');
}

const ToneJsonSchema = z.object({
  sample_rate: z.number().int().positive(),
  words: z.record(z.string(), z.number().positive()),
  mel_bins: z.record(z.string(), z.number().int().nonnegative()).optional(),
});

/** Reads `<modelDir>/tones.json`; ModelInvalidError if it is missing or malformed. */
export async function readToneTable(modelDir: string): Promise<ToneTable> {
  const path = join(modelDir, 'tones.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ModelInvalidError(`cannot read ${path}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelInvalidError(`${path} is not JSON`, { cause: err });
  }
  const parsed = ToneJsonSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new ModelInvalidError(`${path} is not a tone table`, { details: issues });
  }
  return {
    sampleRateHz: parsed.data.sample_rate,
    frequenciesHz: new Map(Object.entries(parsed.data.words)),
    melBins: new Map(Object.entries(parsed.data.mel_bins ?? {})),
  };
}
