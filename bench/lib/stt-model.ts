// Models and audio for the speech-recognition benchmarks: the tone model (instant) and the bench model
// (about 115 MB and 15 s to write at the default size), generated once into a cache directory under the
// system temp dir and reused while its marker file says it is complete.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DEFAULT_BENCH_LAYERS, DEFAULT_BENCH_HIDDEN, writeBenchModel } from '../../src/vosk-model/bench-model.js';
import { readToneTable, synthesizeToneAudio } from '../../src/vosk-model/tone-audio.js';
import { DEFAULT_TONE_WORDS, writeToneModel } from '../../src/vosk-model/tone-model.js';

export type SttModelKind = 'tone' | 'bench';

export interface SttModelSpec {
  kind: SttModelKind;
  /** Bench model only; default: the generator's default. */
  layers?: number;
  /** Bench model only; default: the generator's default. */
  hidden?: number;
}

export interface SttModel {
  kind: SttModelKind;
  dir: string;
  /** e.g. "bench 20x1024" or "tone". */
  label: string;
  frequenciesHz: ReadonlyMap<string, number>;
  /** Size of am/final.mdl in bytes. */
  finalMdlBytes: number;
  wasCached: boolean;
}

const COMPLETE_MARKER = '.voxgate-stt-bench-complete';

export function sttModelCacheDir(spec: SttModelSpec): string {
  if (spec.kind === 'tone') return join(tmpdir(), 'voxgate-stt-bench', 'tone');
  const layers = spec.layers ?? DEFAULT_BENCH_LAYERS;
  const hidden = spec.hidden ?? DEFAULT_BENCH_HIDDEN;
  return join(tmpdir(), 'voxgate-stt-bench', `bench-${layers}x${hidden}`);
}

/** The model of `spec` in its cache directory, written first if it is missing or incomplete. */
export async function prepareSttModel(spec: SttModelSpec, log: (line: string) => void = () => {}): Promise<SttModel> {
  const dir = sttModelCacheDir(spec);
  const marker = join(dir, COMPLETE_MARKER);
  const wasCached = existsSync(marker);
  const layers = spec.layers ?? DEFAULT_BENCH_LAYERS;
  const hidden = spec.hidden ?? DEFAULT_BENCH_HIDDEN;
  if (!wasCached) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const startedAt = performance.now();
    if (spec.kind === 'bench') {
      log(`writing the bench model ${layers}x${hidden} into ${dir} (reused next time)`);
      await writeBenchModel(dir, { layers, hidden });
    } else {
      await writeToneModel(dir);
    }
    await writeFile(marker, `${new Date().toISOString()} ${Math.round(performance.now() - startedAt)} ms\n`);
  }
  const table = await readToneTable(dir);
  const finalMdlBytes = (await readFile(join(dir, 'am', 'final.mdl'))).byteLength;
  return {
    kind: spec.kind,
    dir,
    label: spec.kind === 'tone' ? 'tone' : `bench ${layers}x${hidden}`,
    frequenciesHz: table.frequenciesHz,
    finalMdlBytes,
    wasCached,
  };
}

export interface ToneUtterance {
  words: string[];
  /** The transcript a correct recogniser returns. */
  text: string;
  pcm: Buffer;
  audioSeconds: number;
}

/** Default tone audio timing: 300 ms lead, 300 ms tone + 200 ms gap per word, 1000 ms tail. */
export const TONE_LEAD_MS = 300;
export const TONE_WORD_MS = 500;

/**
 * About `seconds` of tone speech: words cycling through the vocabulary from `offset` (so different
 * streams say different things), without endpoints inside (gaps are shorter than the endpointer's rule).
 */
export function toneUtterance(model: SttModel, seconds: number, offset = 0): ToneUtterance {
  const vocabulary = [...model.frequenciesHz.keys()];
  const count = Math.max(1, Math.round((seconds * 1000 - TONE_LEAD_MS - 800) / TONE_WORD_MS));
  const words: string[] = [];
  // A stride coprime with 5 makes the sequence differ from a plain cycle.
  for (let i = 0; i < count; i++) words.push(vocabulary[(offset + i * 3) % vocabulary.length] ?? DEFAULT_TONE_WORDS[0]!);
  const pcm = synthesizeToneAudio(words, { frequenciesHz: model.frequenciesHz, leadMs: TONE_LEAD_MS });
  return { words, text: words.join(' '), pcm, audioSeconds: pcm.length / 32000 };
}
