import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { writeBenchModel } from '../../src/vosk-model/bench-model.js';
import { checkModel } from '../../src/vosk-model/check.js';

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'voxgate-bench-model-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const mdlHash = async (dir: string): Promise<string> =>
  createHash('sha256').update(await readFile(join(dir, 'am', 'final.mdl'))).digest('hex');

t.test('a small bench variant still decodes the tones exactly', async (t) => {
  const dir = await tempDir(t);
  const info = await writeBenchModel(dir, { layers: 2, hidden: 64 });
  t.match(info, { layers: 2, hidden: 64, parameterCount: 41 * 64 + 65 * 64 + 65 * 6 });
  t.match(await checkModel(dir), { ok: true, text: 'alpha bravo charlie delta echo' });
  t.match(await checkModel(dir, { words: ['echo', 'echo', 'bravo'] }), { ok: true, text: 'echo echo bravo' });
});

t.test('the fbank and grammar layouts carry over to the bench variant', async (t) => {
  const dir = await tempDir(t);
  await writeBenchModel(dir, { layers: 1, hidden: 16, fbank: true, grammar: true, words: ['up', 'down'] });
  t.match(await checkModel(dir, { words: ['down', 'up'] }), { ok: true, text: 'down up' });
});

t.test('the same seed writes the same bytes, another seed different filler', async (t) => {
  const dir = await tempDir(t);
  await writeBenchModel(join(dir, 'a'), { layers: 2, hidden: 32, seed: 7 });
  await writeBenchModel(join(dir, 'b'), { layers: 2, hidden: 32, seed: 7 });
  await writeBenchModel(join(dir, 'c'), { layers: 2, hidden: 32, seed: 8 });
  t.equal(await mdlHash(join(dir, 'a')), await mdlHash(join(dir, 'b')));
  t.not(await mdlHash(join(dir, 'a')), await mdlHash(join(dir, 'c')));
});

t.test('a hidden layer too narrow for the tone logits is refused', async (t) => {
  const dir = await tempDir(t);
  await t.rejects(writeBenchModel(dir, { hidden: 12 }), { code: 'MODEL_INVALID' });
  await t.rejects(writeBenchModel(dir, { layers: 0 }), { code: 'MODEL_INVALID' });
});
