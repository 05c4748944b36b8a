// The Vosk model under test: the tone model (instant) or the bench model (about 115 MB, ~15 s to write),
// generated once into a cache directory and reused while its marker file says it is complete.
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DEFAULT_BENCH_HIDDEN, DEFAULT_BENCH_LAYERS, writeBenchModel } from '../../src/vosk-model/bench-model.js';
import { readToneTable } from '../../src/vosk-model/tone-audio.js';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';

export type ModelKind = 'tone' | 'bench';

export interface PreparedModel {
  kind: ModelKind;
  /** `tone`, or `bench 23x1024` (hidden layers x width). */
  description: string;
  dir: string;
  frequenciesHz: Array<[string, number]>;
  wasCached: boolean;
}

const COMPLETE_MARKER = '.voxgate-load-complete';

/** The bench model's size is in the cache name, so a new default size never reuses an old model. */
export function defaultModelCacheDir(kind: ModelKind): string {
  return join(tmpdir(), kind === 'bench' ? `voxgate-load-bench-model-${DEFAULT_BENCH_LAYERS}x${DEFAULT_BENCH_HIDDEN}` : 'voxgate-load-tone-model');
}

export async function prepareModel(kind: ModelKind, dir: string, log: (line: string) => void): Promise<PreparedModel> {
  const marker = join(dir, COMPLETE_MARKER);
  const wasCached = existsSync(marker);
  if (!wasCached) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const startedAt = performance.now();
    if (kind === 'bench') {
      log(`writing the bench model (${DEFAULT_BENCH_LAYERS}x${DEFAULT_BENCH_HIDDEN}) into ${dir} (15-30 s, 115-190 MB; reused next time)`);
      await writeBenchModel(dir, { layers: DEFAULT_BENCH_LAYERS, hidden: DEFAULT_BENCH_HIDDEN });
    } else {
      await writeToneModel(dir);
    }
    await writeFile(marker, `${new Date().toISOString()} ${Math.round(performance.now() - startedAt)} ms\n`);
  }
  const description = kind === 'bench' ? `bench ${DEFAULT_BENCH_LAYERS}x${DEFAULT_BENCH_HIDDEN}` : 'tone';
  const table = await readToneTable(dir);
  return { kind, description, dir, frequenciesHz: [...table.frequenciesHz], wasCached };
}
