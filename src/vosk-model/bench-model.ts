// The bench variant of the tone model: same graph and transition model, but the acoustic network gets
// hidden Affine+ReLU layers so that one stream costs about as much CPU as a small real Vosk model, while
// the transcripts stay those of the tone model (port of the idea of gen_bench_model.py).
//
// How the tone logits survive the extra layers: with z = W x + b the tone model's logits (k of them),
//   first layer (features -> H): rows 0..k-1 = [W | b], rows k..2k-1 = [-W | -b], the rest filler
//   later layers (H -> H):       rows 0..k-1 = [I, -I, 0], rows k..2k-1 = [-I, I, 0], the rest filler
//   output (H -> k):             [I, -I, 0], so relu(z) - relu(-z) = z exactly
// Filler rows are random (He-uniform, so activations keep their scale at any depth and never overflow)
// and cost the same matrix work as a trained network, but their weight into the output is exactly 0.
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { ModelInvalidError } from '../errors.js';
import { kaldiMatrixRow, kaldiVector } from './kaldi-text.js';
import { toneModelAffine, writeToneModel, type ToneModelOptions } from './tone-model.js';
import { mulberry32 } from './tone-audio.js';
import type { ToneTable } from './tone-table.js';

/** Hidden Affine+ReLU layers by default (see BenchModelOptions.layers). */
export const DEFAULT_BENCH_LAYERS = 23;
/** Units per hidden layer by default. */
export const DEFAULT_BENCH_HIDDEN = 1024;

export interface BenchModelOptions extends ToneModelOptions {
  /**
   * Hidden Affine+ReLU layers (default 23: about 20 audio seconds per CPU second, a real-time factor of
   * 0.05, for one stream on one thread of this 2-core EPYC with OPENBLAS_CORETYPE=Haswell; 14 gave 31).
   */
  layers?: number;
  /** Units per hidden layer (default 1024). */
  hidden?: number;
  /** Seed of the filler weights; the same seed writes the same bytes. */
  seed?: number;
}

export interface BenchModelInfo {
  dir: string;
  tones: ToneTable;
  layers: number;
  hidden: number;
  /** Weights and biases in the network. */
  parameterCount: number;
  finalMdlBytes: number;
}

/** Four significant digits, as the prototype writes: ample for filler (the default model is ~186 MiB as text). */
const BENCH_NUMBER_PRECISION = 4;
const FLUSH_CHARS = 1 << 20;

/** Buffers text into ~1 MB writes and waits for the stream to drain, so memory stays flat. */
class TextSink {
  readonly #stream: WriteStream;
  #parts: string[] = [];
  #length = 0;

  constructor(stream: WriteStream) {
    this.#stream = stream;
  }

  async write(text: string): Promise<void> {
    this.#parts.push(text);
    this.#length += text.length;
    if (this.#length >= FLUSH_CHARS) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#parts.length === 0) return;
    const chunk = this.#parts.join('');
    this.#parts = [];
    this.#length = 0;
    if (!this.#stream.write(chunk)) await once(this.#stream, 'drain');
  }
}

function componentText(kind: 'RectifiedLinearComponent' | 'LogSoftmaxComponent', name: string, dim: number): string {
  return `<ComponentName> ${name} <${kind}> <Dim> ${dim} <ValueAvg> [ ] <DerivAvg> [ ] <Count> 0 <NumDimsSelfRepaired> 0 <NumDimsProcessed> 0 </${kind}>`;
}

async function writeAffine(
  sink: TextSink,
  name: string,
  rowCount: number,
  row: (index: number, out: Float64Array) => void,
  inputDim: number,
  bias: ArrayLike<number>,
): Promise<void> {
  await sink.write(`<ComponentName> ${name} <AffineComponent> <LearningRate> 0.001 <LinearParams> [\n`);
  const values = new Float64Array(inputDim);
  for (let r = 0; r < rowCount; r++) {
    values.fill(0);
    row(r, values);
    await sink.write(`${kaldiMatrixRow(values, BENCH_NUMBER_PRECISION)}${r + 1 < rowCount ? '\n' : ' ]\n'}`);
  }
  await sink.write(`<BiasParams> ${kaldiVector(bias, BENCH_NUMBER_PRECISION)}\n</AffineComponent>\n`);
}

/** Writes a bench model into `dir`: a tone model whose am/final.mdl carries the deep network. */
export async function writeBenchModel(dir: string, options: BenchModelOptions = {}): Promise<BenchModelInfo> {
  const layers = options.layers ?? DEFAULT_BENCH_LAYERS;
  const hidden = options.hidden ?? DEFAULT_BENCH_HIDDEN;
  const { weights, bias } = toneModelAffine(options);
  const pdfs = weights.length;
  const signalUnits = 2 * pdfs;
  if (!Number.isInteger(layers) || layers < 1) throw new ModelInvalidError(`bench layers must be >= 1, got ${layers}`);
  if (!Number.isInteger(hidden) || hidden <= signalUnits) {
    throw new ModelInvalidError(`bench hidden width must be an integer above ${signalUnits}, got ${hidden}`);
  }
  const { tones } = await writeToneModel(dir, options);
  const mdlPath = join(dir, 'am', 'final.mdl');
  const transitionModel = (await readFile(mdlPath, 'utf8')).split('<Nnet3> ')[0] ?? '';
  const featureDim = weights[0]?.length ?? 0;
  const random = mulberry32(options.seed ?? 1);

  const stream = createWriteStream(mdlPath);
  const sink = new TextSink(stream);
  await sink.write(`${transitionModel}<Nnet3> \ninput-node name=input dim=${featureDim}\n`);
  let previous = 'input';
  for (let i = 0; i < layers; i++) {
    await sink.write(`component-node name=affine${i} component=affine${i} input=${previous}\n`);
    await sink.write(`component-node name=relu${i} component=relu${i} input=affine${i}\n`);
    previous = `relu${i}`;
  }
  await sink.write(`component-node name=affine_out component=affine_out input=${previous}\n`);
  await sink.write('component-node name=logsoftmax component=logsoftmax input=affine_out\n');
  await sink.write('output-node name=output input=logsoftmax objective=linear\n\n');
  await sink.write(`<NumComponents> ${2 * layers + 2}\n`);

  for (let i = 0; i < layers; i++) {
    const inputDim = i === 0 ? featureDim : hidden;
    const fillerLimit = Math.sqrt(6 / inputDim);
    const layerBias = new Float64Array(hidden);
    if (i === 0) {
      bias.forEach((value, k) => {
        layerBias[k] = value;
        layerBias[pdfs + k] = -value;
      });
    }
    await writeAffine(
      sink,
      `affine${i}`,
      hidden,
      (r, out) => {
        if (r >= signalUnits) {
          for (let c = 0; c < inputDim; c++) out[c] = (2 * random() - 1) * fillerLimit;
        } else if (i === 0) {
          const sign = r < pdfs ? 1 : -1;
          (weights[r % pdfs] ?? []).forEach((value, c) => (out[c] = sign * value));
        } else {
          // relu(z) units carry +z, relu(-z) units carry -z: each signal row takes their difference.
          const k = r % pdfs;
          const sign = r < pdfs ? 1 : -1;
          out[k] = sign;
          out[pdfs + k] = -sign;
        }
      },
      inputDim,
      layerBias,
    );
    await sink.write(`${componentText('RectifiedLinearComponent', `relu${i}`, hidden)}\n`);
  }
  await writeAffine(
    sink,
    'affine_out',
    pdfs,
    (k, out) => {
      out[k] = 1;
      out[pdfs + k] = -1;
    },
    hidden,
    new Float64Array(pdfs),
  );
  await sink.write(`${componentText('LogSoftmaxComponent', 'logsoftmax', pdfs)}\n`);
  await sink.write('</Nnet3>\n<LeftContext> 0 <RightContext> 0 <Priors> [ ]\n');
  await sink.flush();
  stream.end();
  await once(stream, 'close');

  const parameterCount =
    (featureDim + 1) * hidden + (layers - 1) * (hidden + 1) * hidden + (hidden + 1) * pdfs;
  return { dir, tones, layers, hidden, parameterCount, finalMdlBytes: (await stat(mdlPath)).size };
}
