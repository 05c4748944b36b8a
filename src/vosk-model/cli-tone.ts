// npm run model:tone -- DIR [--grammar] [--no-unk] [--fbank] [--words a,b] [--spk]
//                            [--bench [--layers N] [--hidden N] [--seed N]]
import { parseArgs } from 'node:util';

import { writeBenchModel } from './bench-model.js';
import { writeSpeakerModel, writeToneModel, type ToneModelOptions } from './tone-model.js';

const USAGE =
  'usage: npm run model:tone -- DIR [--grammar] [--no-unk] [--fbank] [--words a,b,c] [--spk]\n' +
  '                               [--bench [--layers N] [--hidden N] [--seed N]]\n';

function integerOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed)) throw new TypeError(`--${name} needs an integer, got ${JSON.stringify(value)}`);
  return parsed;
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        grammar: { type: 'boolean' },
        'no-unk': { type: 'boolean' },
        fbank: { type: 'boolean' },
        words: { type: 'string' },
        spk: { type: 'boolean' },
        bench: { type: 'boolean' },
        layers: { type: 'string' },
        hidden: { type: 'string' },
        seed: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const dir = positionals[0];
  if (values.help === true || dir === undefined || positionals.length > 1) {
    process.stderr.write(USAGE);
    return values.help === true ? 0 : 2;
  }
  if (values.spk === true) {
    await writeSpeakerModel(dir);
    process.stdout.write(`speaker model written to ${dir}\n`);
    return 0;
  }
  const options: ToneModelOptions = {
    grammar: values.grammar === true,
    noUnk: values['no-unk'] === true,
    fbank: values.fbank === true,
    ...(values.words === undefined ? {} : { words: values.words.split(',') }),
  };
  const startMs = performance.now();
  if (values.bench === true) {
    const layers = integerOption(values.layers, 'layers');
    const hidden = integerOption(values.hidden, 'hidden');
    const seed = integerOption(values.seed, 'seed');
    const info = await writeBenchModel(dir, {
      ...options,
      ...(layers === undefined ? {} : { layers }),
      ...(hidden === undefined ? {} : { hidden }),
      ...(seed === undefined ? {} : { seed }),
    });
    const seconds = ((performance.now() - startMs) / 1000).toFixed(1);
    process.stdout.write(
      `bench model ${dir}: ${info.layers} hidden Affine+ReLU layers of width ${info.hidden}, ` +
        `${(info.parameterCount / 1e6).toFixed(1)} M parameters, final.mdl ${(info.finalMdlBytes / 1e6).toFixed(1)} MB, ${seconds} s\n`,
    );
    return 0;
  }
  const { tones } = await writeToneModel(dir, options);
  for (const [word, hz] of tones.frequenciesHz) process.stdout.write(`${word.padEnd(10)} ${hz.toFixed(2).padStart(8)} Hz\n`);
  return 0;
}

try {
  process.exitCode = await main();
} catch (err) {
  process.stderr.write(`model:tone failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
