import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { checkModel } from '../../src/vosk-model/check.js';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'voxgate-check-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a generated tone model loads and decodes its whole vocabulary exactly', async (t) => {
  const dir = await tempDir(t);
  await writeToneModel(dir);
  const result = await checkModel(dir);
  t.match(result, { ok: true, text: 'alpha bravo charlie delta echo', hasToneTable: true });
  if (result.ok) t.ok(result.loadMs >= 0 && result.decodeMs >= 0 && result.audioSeconds > 3);
});

t.test('the fbank variant decodes chosen words', async (t) => {
  const dir = await tempDir(t);
  await writeToneModel(dir, { fbank: true });
  t.match(await checkModel(dir, { words: ['echo', 'alpha', 'alpha'] }), { ok: true, text: 'echo alpha alpha' });
});

t.test('a grammar model decodes through a grammar recogniser, with [unk] for excluded words', async (t) => {
  const dir = await tempDir(t);
  await writeToneModel(dir, { grammar: true });
  const result = await checkModel(dir, {
    words: ['alpha', 'charlie', 'bravo'],
    grammar: ['alpha', 'bravo', '[unk]'],
    expectedText: 'alpha [unk] bravo',
  });
  t.match(result, { ok: true, text: 'alpha [unk] bravo' });
});

t.test('a missing directory is reported without starting libvosk', async (t) => {
  const dir = join(await tempDir(t), 'absent');
  const result = await checkModel(dir);
  t.match(result, { ok: false, reason: /does not exist/ });
});

t.test('a missing conf/model.conf is named', async (t) => {
  const dir = await tempDir(t);
  await writeToneModel(dir);
  await rm(join(dir, 'conf', 'model.conf'));
  t.match(await checkModel(dir), { ok: false, reason: /no conf\/model\.conf/ });
});

t.test('libvosk aborting on a model without silence phones is reported, not fatal', async (t) => {
  const dir = await tempDir(t);
  await writeToneModel(dir);
  const confPath = join(dir, 'conf', 'model.conf');
  const conf = await readFile(confPath, 'utf8');
  await writeFile(confPath, conf.replace('--endpoint.silence-phones=1\n', ''));
  const result = await checkModel(dir);
  t.match(result, { ok: false, reason: /crashed the check process with SIGABRT.*silence-phones/ });
});

t.test('a model that libvosk refuses to load is reported with its error', async (t) => {
  const dir = await tempDir(t);
  await writeToneModel(dir);
  await writeFile(join(dir, 'conf', 'mfcc.conf'), '--no-such-option=1\n');
  t.match(await checkModel(dir), { ok: false, reason: /could not load the model.*no-such-option/ });
});

t.test('a wrong transcript is reported with both texts', async (t) => {
  const dir = await tempDir(t);
  await writeToneModel(dir);
  const result = await checkModel(dir, { words: ['alpha'], expectedText: 'bravo' });
  t.match(result, { ok: false, reason: 'decoded "alpha", expected "bravo"' });
});

t.test('a check that outlives its timeout is killed and reported', async (t) => {
  const dir = await tempDir(t);
  await writeToneModel(dir);
  t.match(await checkModel(dir, { timeoutMs: 1 }), { ok: false, reason: /did not finish within 1 ms/ });
});
