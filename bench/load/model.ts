// The Vosk model under test: the tone model (instant) or the bench model (about 115 MB, ~15 s to write),
// generated once into a cache directory and reused while its marker file says it is complete.
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { writeBenchModel } from '../../src/vosk-model/bench-model.js';
import { readToneTable } from '../../src/vosk-model/tone-audio.js';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';

export type ModelKind = 'tone' | 'bench';

export interface PreparedModel {
  kind: ModelKind;
  dir: string;
  frequenciesHz: Array<[string, number]>;
  wasCached: boolean;
}

const COMPLETE_MARKER = '.voxgate-load-complete';

export function defaultModelCacheDir(kind: ModelKind): string {
  return join(tmpdir(), `voxgate-load-${kind}-model`);
}

export async function prepareModel(kind: ModelKind, dir: string, log: (line: string) => void): Promise<PreparedModel> {
  const marker = join(dir, COMPLETE_MARKER);
  const wasCached = existsSync(marker);
  if (!wasCached) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const startedAt = performance.now();
    if (kind === 'bench') {
      log(`writing the bench model into ${dir} (about 15 s, 115 MB; reused next time)`);
      await writeBenchModel(dir);
    } else {
      await writeToneModel(dir);
    }
    await writeFile(marker, `${new Date().toISOString()} ${Math.round(performance.now() - startedAt)} ms\n`);
  }
  const table = await readToneTable(dir);
  return { kind, dir, frequenciesHz: [...table.frequenciesHz], wasCached };
}
