import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

import t, { type Test } from 'tap';

import { fusedMultiplyAdd } from '../../src/vosk-model/exact-math.js';
import { formatG } from '../../src/vosk-model/format-g.js';
import { readToneTable, synthesizeToneAudio, toneFrequencies } from '../../src/vosk-model/tone-audio.js';
import { writeSpeakerModel, writeToneModel, type ToneModelOptions } from '../../src/vosk-model/tone-model.js';

// sha256 of every file that /work/shared/reference/tone-model/gen_model.py (Python 3.11, numpy 2.4.6 with
// scipy-openblas 0.3.31, glibc 2.36 libm) wrote for these options; the TypeScript port must match them.
const PROTOTYPE_SHA256: Record<string, Record<string, string>> = {
  default: {
    'am/final.mdl': '5c20318302d697fd7371246ef8fdf77fdc7a8a4b8c138a6b8470f1a5e7fd3986',
    'conf/mfcc.conf': 'e746d8efdeb6a124932084451826763dc81d43e46282091fdff4825bce33ebed',
    'conf/model.conf': '5dd409b03d6dc2aa6193ff82b1d9b8a6d7e11c2caecd7edf164643542206e623',
    'graph/HCLG.fst': '0b5a29994aa477bde1a5dc50537257f98ae139d3539b2d91f764cdd055b9f3d9',
    'graph/phones.txt': 'a2ff6e53f33e4cbafcdcf4ac441a3e6c84b969d480dc0470ec96a9f956ff411e',
    'graph/phones/word_boundary.int': '33c47627b282c6423f0338dc3dd1a0e8b913f46bb88f7cf914e590a00eb3e5ba',
    'graph/words.txt': '8d8860fa472a3fdd4466157254ffff21b4d75e70c661f4659e7eb661381bfd9b',
    'tones.json': '5ee356e33a6002bbfc0128420ca11fa794fce36b8a6e21b7ceb64e2e87349744',
  },
  grammar: {
    'am/final.mdl': '5c20318302d697fd7371246ef8fdf77fdc7a8a4b8c138a6b8470f1a5e7fd3986',
    'conf/mfcc.conf': 'e746d8efdeb6a124932084451826763dc81d43e46282091fdff4825bce33ebed',
    'conf/model.conf': '5dd409b03d6dc2aa6193ff82b1d9b8a6d7e11c2caecd7edf164643542206e623',
    'graph/Gr.fst': 'e715db05c20e7a64496eaadc155529c8db613febdaf73fcb29a9a5a03887a7c9',
    'graph/HCLr.fst': 'cebbcb94b1f2c6d584e897404dd5a01f04d3c5bc0793ad1944606c82f4f30802',
    'graph/disambig_tid.int': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    'graph/phones.txt': 'a2ff6e53f33e4cbafcdcf4ac441a3e6c84b969d480dc0470ec96a9f956ff411e',
    'graph/phones/word_boundary.int': '33c47627b282c6423f0338dc3dd1a0e8b913f46bb88f7cf914e590a00eb3e5ba',
    'graph/words.txt': '8d8860fa472a3fdd4466157254ffff21b4d75e70c661f4659e7eb661381bfd9b',
    'tones.json': '5ee356e33a6002bbfc0128420ca11fa794fce36b8a6e21b7ceb64e2e87349744',
  },
  nounk: {
    'am/final.mdl': '279620b6870158f6a5d6a74f73f3d6851e660e1467126312b35f02af8c84bdb5',
    'conf/mfcc.conf': 'e746d8efdeb6a124932084451826763dc81d43e46282091fdff4825bce33ebed',
    'conf/model.conf': '5dd409b03d6dc2aa6193ff82b1d9b8a6d7e11c2caecd7edf164643542206e623',
    'graph/HCLG.fst': 'bf481d801e9be5a74c7c46bc442aa83abfc20813b59d7d049d5dc5689355799e',
    'graph/phones.txt': 'd5b7b030bc24c4886ffa580c1e5b5c04300747e5851b0fa664366269f1931576',
    'graph/phones/word_boundary.int': 'b6a3a8fc5c5bb3c9ba26df980c6ab8f481e7edd7af02d91259fcccb1995bb3d4',
    'graph/words.txt': 'd59f21a453ca775fd40ef2bb2e7b4cec16799ec3eb37d5cff07fd18090a86d7e',
    'tones.json': '5ee356e33a6002bbfc0128420ca11fa794fce36b8a6e21b7ceb64e2e87349744',
  },
  fbank: {
    'am/final.mdl': 'aa29a0c344d51f6f0294bfb4f95909a5dc4f1ea3c6e09b5a0b5a846e4d7f3449',
    'conf/fbank.conf': '53e71c71e29604cffdde6e64d9707fcdbd4ae949ad8a6b11af9c83c74f217e4b',
    'conf/model.conf': '5dd409b03d6dc2aa6193ff82b1d9b8a6d7e11c2caecd7edf164643542206e623',
    'graph/HCLG.fst': '0b5a29994aa477bde1a5dc50537257f98ae139d3539b2d91f764cdd055b9f3d9',
    'graph/phones.txt': 'a2ff6e53f33e4cbafcdcf4ac441a3e6c84b969d480dc0470ec96a9f956ff411e',
    'graph/phones/word_boundary.int': '33c47627b282c6423f0338dc3dd1a0e8b913f46bb88f7cf914e590a00eb3e5ba',
    'graph/words.txt': '8d8860fa472a3fdd4466157254ffff21b4d75e70c661f4659e7eb661381bfd9b',
    'tones.json': '5ee356e33a6002bbfc0128420ca11fa794fce36b8a6e21b7ceb64e2e87349744',
  },
  words: {
    'am/final.mdl': '74f24d60127b147dbf21c22de38acc44d71cda3d32f5bdc4bef4de8f2a062705',
    'conf/mfcc.conf': 'e746d8efdeb6a124932084451826763dc81d43e46282091fdff4825bce33ebed',
    'conf/model.conf': '5dd409b03d6dc2aa6193ff82b1d9b8a6d7e11c2caecd7edf164643542206e623',
    'graph/HCLG.fst': 'd78536e5e9470af65c390a82754c4113b3b3a347cb4fcfb2a7a6f948c693017d',
    'graph/phones.txt': 'ef789e0bc8781eb3e662a28d68dd407a25472fa3032ebf72199940f7323d9668',
    'graph/phones/word_boundary.int': '7cd2c85228545d4e8115c05316a4d441b63b131ec23c534116bf49570fdf82b3',
    'graph/words.txt': '61be94c70b34c6f362b0525bab19e407d3e40ccfed6fe8fe7c62d54909f94743',
    'tones.json': '13dcd0ba945c40e2465083bd8919a2c8055f38f90684b9d221fca00614ac2a2f',
  },
  all: {
    'am/final.mdl': '642b720dba0dd3cf512bb3e5413d27131672970d81911150146cd78c691a4422',
    'conf/fbank.conf': '53e71c71e29604cffdde6e64d9707fcdbd4ae949ad8a6b11af9c83c74f217e4b',
    'conf/model.conf': '5dd409b03d6dc2aa6193ff82b1d9b8a6d7e11c2caecd7edf164643542206e623',
    'graph/Gr.fst': 'a48395e0ca68d7b693772b5431444710e4210401319285f7cbd67184290bcdd5',
    'graph/HCLr.fst': '263658b6dc877310e2428730bc1f4b595951714a221ef874e8c97cc1ce90ec98',
    'graph/disambig_tid.int': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    'graph/phones.txt': '06cedeb442b6830566a282403bb6f9076db4ea7e06338921be98cef724568e5f',
    'graph/phones/word_boundary.int': 'efd4985e615f4c2485b22c19556c4d46f6984a7f28deffe4e487465d1c34e430',
    'graph/words.txt': 'dc1580df85c27d16effa1d77dc49775839762e55df4cf2d2afd0310c97179eba',
    'tones.json': '0180524589c633b4d562f8dad20852330b733de04996abf448c85830a6d0af01',
  },
  grmnounk: {
    'am/final.mdl': '3094ea43b770118d441a30de6800852a75b66163721e4127abcf78890a3229ac',
    'conf/mfcc.conf': 'e746d8efdeb6a124932084451826763dc81d43e46282091fdff4825bce33ebed',
    'conf/model.conf': '5dd409b03d6dc2aa6193ff82b1d9b8a6d7e11c2caecd7edf164643542206e623',
    'graph/Gr.fst': '3ff97d953da5e352224aba51aa94b529efcefd4db5f3fe5dd2a20bd939958ce3',
    'graph/HCLr.fst': '5e8cd44300189a6f05d3ba114e045d6e86479f77e11255215105acaa8a9fc544',
    'graph/disambig_tid.int': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    'graph/phones.txt': 'c749f7c4d399e7165a2170f25280b1cfc5dc76cd157a89b80c1e58193633a60a',
    'graph/phones/word_boundary.int': '7cd2c85228545d4e8115c05316a4d441b63b131ec23c534116bf49570fdf82b3',
    'graph/words.txt': '046f1334aa8f936be2539680d976374fa49fbbc594850c2fe530b4d0e95c50c6',
    'tones.json': '3d6376510da14e4819f83861956be99d6f97a8b86329acc7bd7ed5c2b480f7f0',
  },
  spk: {
    'final.ext.raw': '5dbc212d66e1ca8430d98f36e620c7eabb7f6ff67e427e114b02480e1703491d',
    'mean.vec': '2b2f0d7dff3c6a868b22fb595b971d37e559dcf403aa811e38707f11b114b151',
    'mfcc.conf': 'e746d8efdeb6a124932084451826763dc81d43e46282091fdff4825bce33ebed',
    'transform.mat': 'd93b1d4878a8e9290993e2be1618a0e6e7bc0b428c3da22c7b7cdc203271abc2',
  },
};

const CASES: Record<string, ToneModelOptions> = {
  default: {},
  grammar: { grammar: true },
  nounk: { noUnk: true },
  fbank: { fbank: true },
  words: { words: ['delta', 'alpha'] },
  all: { grammar: true, noUnk: true, fbank: true, words: 'a,b,c,d,e,f,g,h,i,j,k'.split(',') },
  grmnounk: { grammar: true, noUnk: true, words: ['bravo', 'echo', 'zulu'] },
};

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'voxgate-tone-model-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function fileHashes(dir: string): Promise<Record<string, string>> {
  const hashes: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    hashes[relative(dir, path)] = createHash('sha256').update(await readFile(path)).digest('hex');
  }
  return hashes;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

t.test('writeToneModel writes the same bytes as the Python prototype', async (t) => {
  const root = await tempDir(t);
  for (const [name, options] of Object.entries(CASES)) {
    await writeToneModel(join(root, name), options);
    t.same(await fileHashes(join(root, name)), PROTOTYPE_SHA256[name], name);
  }
});

t.test('writeSpeakerModel writes the same bytes as the Python prototype', async (t) => {
  const dir = await tempDir(t);
  await writeSpeakerModel(dir);
  t.same(await fileHashes(dir), PROTOTYPE_SHA256.spk);
});

t.test('two generations are identical', async (t) => {
  const root = await tempDir(t);
  await writeToneModel(join(root, 'one'), { grammar: true });
  await writeToneModel(join(root, 'two'), { grammar: true });
  t.same(await fileHashes(join(root, 'one')), await fileHashes(join(root, 'two')));
});

t.test('invalid vocabularies are refused', async (t) => {
  const dir = await tempDir(t);
  await t.rejects(writeToneModel(dir, { words: [] }), { code: 'MODEL_INVALID' });
  await t.rejects(writeToneModel(dir, { words: 'abcdefghijkl'.split('') }), { code: 'MODEL_INVALID' });
  await t.rejects(writeToneModel(dir, { words: ['two words'] }), { code: 'MODEL_INVALID' });
  await t.rejects(writeToneModel(dir, { words: ['alpha', 'alpha'] }), { code: 'MODEL_INVALID' });
  await t.rejects(writeToneModel(dir, { words: ['[unk]'] }), { code: 'MODEL_INVALID' });
});

t.test('tones.json round-trips through readToneTable and matches toneFrequencies', async (t) => {
  const dir = await tempDir(t);
  const { tones } = await writeToneModel(dir, { words: ['delta', 'alpha'] });
  const read = await readToneTable(dir);
  t.same([...read.frequenciesHz], [...tones.frequenciesHz]);
  t.same([...read.melBins], [['delta', 8], ['alpha', 13]]);
  t.same([...toneFrequencies(['delta', 'alpha'])], [['delta', 531.398], ['alpha', 959.128]]);
  t.same([...toneFrequencies()].map(([word]) => word), ['alpha', 'bravo', 'charlie', 'delta', 'echo']);
});

t.test('readToneTable names a missing or malformed tones.json', async (t) => {
  const dir = await tempDir(t);
  await t.rejects(readToneTable(dir), { code: 'MODEL_INVALID' });
});

t.test('formatG writes what C printf %g writes, ties to even', async (t) => {
  // Expected strings from Python's "%.<p>g" % x.
  const cases: [number, number, string][] = [
    [0.5, 1, '0.5'],
    [1.5, 1, '2'],
    [2.5, 1, '2'],
    [0.125, 2, '0.12'],
    [12345678.25, 9, '12345678.2'],
    [1e-5, 9, '1e-05'],
    [1e16, 9, '1e+16'],
    [123456789, 9, '123456789'],
    [1234567890, 9, '1.23456789e+09'],
    [-0, 9, '-0'],
    [0.000123456789, 4, '0.0001235'],
    [100000, 6, '100000'],
    [1.6630368e-17, 9, '1.6630368e-17'],
    [-0.693147180559945, 9, '-0.693147181'],
    [2.5e-5, 1, '3e-05'],
    [9.9999999995, 9, '10'],
    [0.00015, 1, '0.0001'],
  ];
  for (const [x, precision, expected] of cases) t.equal(formatG(x, precision), expected, `%.${precision}g of ${x}`);
});

t.test('fusedMultiplyAdd rounds once', async (t) => {
  // 0.1 * 10 - 1 is 0 with two roundings, 2^-54 (0.1's representation error times 10) with one.
  t.equal(fusedMultiplyAdd(0.1, 10, -1), 2 ** -54);
  t.equal(fusedMultiplyAdd(2, 3, 4), 10);
});

t.test('synthesizeToneAudio makes the same samples as the prototype test_decode.js', async (t) => {
  // sha256 of test_decode.js synth() output for these parameters.
  t.equal(
    sha256(synthesizeToneAudio(['alpha', 'charlie', 'bravo'])),
    '9a34e531917df7846237525c5a49d613b1685520d5a1915dacdfc02d70537e45',
  );
  const noisy = synthesizeToneAudio(['echo', 'delta', 'alpha', 'echo'], {
    toneMs: 120,
    gapMs: 60,
    amplitude: 0.5,
    noiseLsb: 300,
  });
  t.equal(sha256(noisy), '30b10ad1fd6b516ced5ddfb2550ba1026a0b4bf972b9192365d666f56fc69312');
  t.equal(synthesizeToneAudio([]).length, 2 * 16000 * 1.3);
  t.throws(() => synthesizeToneAudio(['zulu']), RangeError);
});
