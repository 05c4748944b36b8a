// The tone-vocabulary Vosk model (docs/vosk-models.md, vosk-test-model.md §2-3): every word is a sine
// tone on the centre of one mel filter, and every number is computed in closed form, so the real libvosk
// decodes generated audio exactly without any training. This is a port of the Python prototype
// gen_model.py and writes the same bytes for the same options (test/vosk-model/tone-model.test.ts
// holds the prototype's checksums).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { ModelInvalidError } from '../errors.js';
import { fusedMultiplyAdd, roundedCos, roundedLog, roundedSin } from './exact-math.js';
import { formatG } from './format-g.js';
import { kaldiMatrix, kaldiVector } from './kaldi-text.js';
import { encodeVectorFst, type FstArc, type FstState } from './openfst.js';
import { DEFAULT_TONE_WORDS, encodeToneTable, MAX_TONE_WORDS, toneTable, type ToneTable } from './tone-table.js';

export { DEFAULT_TONE_WORDS };

export interface ToneModelOptions {
  /** The vocabulary, one tone each, at most 11 words (default alpha, bravo, charlie, delta, echo). */
  words?: readonly string[];
  /** Write the lookahead layout (HCLr.fst + Gr.fst) that the grammar API needs, instead of HCLG.fst. */
  grammar?: boolean;
  /** Leave out the "[unk]" word (which matches any tone, at a higher cost than the real word). */
  noUnk?: boolean;
  /** Use log-mel filterbank features (conf/fbank.conf) instead of MFCC. */
  fbank?: boolean;
}

export interface ToneModelInfo {
  dir: string;
  /** What tones.json in the model says: the frequency and mel bin of each word. */
  tones: ToneTable;
}

const SAMPLE_RATE_HZ = 16000;
const NUM_BINS = 40;
const LOW_FREQ_HZ = 20;
const HIGH_FREQ_HZ = 7600;
const CEPSTRAL_LIFTER = 22;
/** Logit scale: nats of score per nat of "peakiness" of a word's mel bin. */
const BETA = 0.5;
/** Peakiness (nats) above which a frame counts as a tone rather than silence. */
const TAU = 8;
/** HMM states per word phone: the shortest word is 3 output frames (90 ms). */
const WORD_STATES = 3;
const WORD_ENTRY_COST = 1;
const SIL_ENTRY_COST = 0.5;
/** "[unk]" matches any tone but costs more than the real word, so it only wins when a grammar excludes it. */
const UNK_ENTRY_COST = 6;
const SIL_PHONE = 1;
const MODEL_NUMBER_PRECISION = 9;

const MODEL_CONF = [
  '--min-active=200',
  '--max-active=3000',
  '--beam=10.0',
  '--lattice-beam=2.0',
  '--acoustic-scale=1.0',
  // Vosk computes word times as output frame x 0.03 s, which holds only for subsampling 3.
  '--frame-subsampling-factor=3',
  // Without silence phones libvosk aborts on the first acceptWaveform.
  '--endpoint.silence-phones=1',
  '--endpoint.rule2.min-trailing-silence=0.5',
  '--endpoint.rule3.min-trailing-silence=1.0',
  '--endpoint.rule4.min-trailing-silence=2.0',
];

function featureConf(hasCepstra: boolean): string {
  const lines = [`--sample-frequency=${SAMPLE_RATE_HZ}`, '--use-energy=false', `--num-mel-bins=${NUM_BINS}`];
  // num-ceps == num-mel-bins makes the DCT square, so the affine layer can invert it.
  if (hasCepstra) lines.push(`--num-ceps=${NUM_BINS}`);
  lines.push(`--low-freq=${formatG(LOW_FREQ_HZ, 6)}`, `--high-freq=${formatG(HIGH_FREQ_HZ, 6)}`, '--dither=0');
  return `${lines.join('\n')}\n`;
}

function validateWords(words: readonly string[]): void {
  if (words.length < 1 || words.length > MAX_TONE_WORDS) {
    throw new ModelInvalidError(`tone model needs 1 to ${MAX_TONE_WORDS} words, got ${words.length}`);
  }
  const seen = new Set<string>();
  for (const word of words) {
    if (word === '' || /\s/.test(word) || word === '<eps>' || word === '[unk]') {
      throw new ModelInvalidError(`tone model word ${JSON.stringify(word)} is empty, has spaces or is reserved`);
    }
    if (seen.has(word)) throw new ModelInvalidError(`tone model word ${JSON.stringify(word)} appears twice`);
    seen.add(word);
  }
}

// --- Acoustic model ----------------------------------------------------------------------------------

/** Kaldi's ComputeDctMatrix for a square matrix (orthonormal DCT-II), with glibc-identical cosines. */
function dctMatrix(n: number): number[][] {
  const rows: number[][] = [];
  for (let k = 0; k < n; k++) {
    const row: number[] = [];
    for (let j = 0; j < n; j++) {
      row.push(k === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n) * roundedCos((Math.PI / n) * (j + 0.5) * k));
    }
    rows.push(row);
  }
  return rows;
}

/**
 * W_mel D^T exactly as numpy's OpenBLAS computes it on this machine class (verified bit for bit for
 * 1..11 words): rows are done in pairs by a kernel that accumulates each element with a chain of FMAs
 * over n; an odd last row goes through a kernel with four FMA accumulators (n mod 4), added pairwise.
 * Near-zero results (column 0, where the row's terms cancel) depend on this order.
 */
function multiplyByDctTranspose(melWeights: number[][], dct: number[][]): number[][] {
  const hasOddLastRow = melWeights.length % 2 === 1;
  return melWeights.map((row, r) =>
    dct.map((dctRow) => {
      if (hasOddLastRow && r === melWeights.length - 1) {
        const lanes = [0, 0, 0, 0];
        row.forEach((w, n) => (lanes[n % 4] = fusedMultiplyAdd(w, dctRow[n] ?? 0, lanes[n % 4] ?? 0)));
        return ((lanes[0] ?? 0) + (lanes[1] ?? 0)) + ((lanes[2] ?? 0) + (lanes[3] ?? 0));
      }
      return row.reduce((sum, w, n) => fusedMultiplyAdd(w, dctRow[n] ?? 0, sum), 0);
    }),
  );
}

/**
 * Affine weights from features to the pdf logits: logit_sil = BETA TAU, logit_k = BETA (L[bin_k] -
 * mean L) in the log-mel domain L. MFCC c = diag(lift) D L with D orthonormal, so L = D^T diag(1/lift) c.
 */
function affineWeights(bins: readonly number[], isFbank: boolean): number[][] {
  const melWeights = [new Array<number>(NUM_BINS).fill(0)];
  for (const bin of bins) {
    const row = new Array<number>(NUM_BINS).fill(-BETA / NUM_BINS);
    row[bin] = (row[bin] ?? 0) + BETA;
    melWeights.push(row);
  }
  if (isFbank) return melWeights;
  const inverseLifter = Array.from(
    { length: NUM_BINS },
    (_, i) => 1 / (1 + 0.5 * CEPSTRAL_LIFTER * roundedSin((Math.PI * i) / CEPSTRAL_LIFTER)),
  );
  // numpy multiplies by diag(1/lift) as a product, not a division: keep the same rounding.
  return multiplyByDctTranspose(melWeights, dctMatrix(NUM_BINS)).map((row) =>
    row.map((value, i) => value * (inverseLifter[i] ?? 0)),
  );
}

export interface AffineLayer {
  /** One row per output (pdf 0 = silence, then one per word), one column per feature. */
  weights: number[][];
  bias: number[];
}

/** The tone model's only layer, from features to the pdf logits (the bench variant builds on it). */
export function toneModelAffine(options: ToneModelOptions = {}): AffineLayer {
  const words = options.words ?? DEFAULT_TONE_WORDS;
  validateWords(words);
  const bins = [...toneTable(words).melBins.values()];
  const bias = new Array<number>(words.length + 1).fill(0);
  bias[0] = BETA * TAU;
  return { weights: affineWeights(bins, options.fbank === true), bias };
}

type Triple = readonly [phone: number, hmmState: number, pdf: number];

function transitionModelText(triples: readonly Triple[], emittingPhones: readonly number[]): string {
  const lines = ['<TransitionModel>', '<Topology>', '<TopologyEntry>', '<ForPhones>', emittingPhones.join(' ')];
  lines.push('</ForPhones>');
  for (let s = 0; s < WORD_STATES; s++) {
    lines.push(`<State> ${s} <PdfClass> ${s} <Transition> ${s} 0.5 <Transition> ${s + 1} 0.5 </State>`);
  }
  lines.push(`<State> ${WORD_STATES} </State>`, '</TopologyEntry>');
  lines.push('<TopologyEntry>', '<ForPhones>', String(SIL_PHONE), '</ForPhones>');
  lines.push('<State> 0 <PdfClass> 0 <Transition> 0 0.5 <Transition> 1 0.5 </State>', '<State> 1 </State>');
  lines.push('</TopologyEntry>', '</Topology>');
  lines.push(`<Triples> ${triples.length}`, ...triples.map((t) => t.join(' ')), '</Triples>');
  // One log-prob per transition-id plus the unused index 0; a short vector is undefined behaviour in Kaldi.
  const logProbs = [0, ...new Array<number>(2 * triples.length).fill(roundedLog(0.5))];
  lines.push('<LogProbs>', kaldiVector(logProbs, MODEL_NUMBER_PRECISION), '</LogProbs>', '</TransitionModel>');
  return lines.join('\n');
}

function nnetText(weights: number[][], bias: number[]): string {
  const numPdfs = weights.length;
  return [
    // The reader wants exactly one character after the token, then the config lines up to an empty line.
    '<Nnet3> ',
    `input-node name=input dim=${NUM_BINS}`,
    'component-node name=affine component=affine input=input',
    'component-node name=logsoftmax component=logsoftmax input=affine',
    'output-node name=output input=logsoftmax objective=linear',
    '',
    '<NumComponents> 2',
    `<ComponentName> affine <AffineComponent> <LearningRate> 0.001 <LinearParams> ${kaldiMatrix(weights, MODEL_NUMBER_PRECISION)}`,
    `<BiasParams> ${kaldiVector(bias, MODEL_NUMBER_PRECISION)}`,
    '</AffineComponent>',
    `<ComponentName> logsoftmax <LogSoftmaxComponent> <Dim> ${numPdfs} <ValueAvg> [ ] <DerivAvg> [ ] <Count> 0 <NumDimsSelfRepaired> 0 <NumDimsProcessed> 0 </LogSoftmaxComponent>`,
    '</Nnet3>',
    '<LeftContext> 0 <RightContext> 0 <Priors> [ ]',
  ].join('\n');
}

// --- Decoding graph ----------------------------------------------------------------------------------

interface GraphBuilder {
  states: FstState[];
  addState(): number;
  addArc(from: number, arc: FstArc): void;
}

function graphBuilder(): GraphBuilder {
  const states: FstState[] = [{ finalWeight: 0, arcs: [] }];
  return {
    states,
    addState() {
      states.push({ finalWeight: null, arcs: [] });
      return states.length - 1;
    },
    addArc(from, arc) {
      states[from]?.arcs.push(arc);
    },
  };
}

/**
 * A word loop through state 0: each pronunciation is three HMM states, forward transition first and
 * then that state's self-loop (Kaldi's reorder=true, which Vosk's word aligner assumes).
 */
function wordLoop(triples: readonly Triple[], pronunciations: readonly Pronunciation[]): FstState[] {
  const transitionState = new Map(triples.map((t, i) => [t.join(' '), i + 1]));
  const selfLoopId = (t: Triple): number => 2 * (transitionState.get(t.join(' ')) ?? 0) - 1;
  const forwardId = (t: Triple): number => 2 * (transitionState.get(t.join(' ')) ?? 0);
  const graph = graphBuilder();
  for (const { phone, pdf, word, cost } of pronunciations) {
    let previous = 0;
    for (let s = 0; s < WORD_STATES; s++) {
      const state = graph.addState();
      const triple: Triple = [phone, s, pdf];
      graph.addArc(previous, {
        inputLabel: forwardId(triple),
        outputLabel: s === 0 ? word : 0,
        weight: s === 0 ? cost : 0,
        nextState: state,
      });
      graph.addArc(state, { inputLabel: selfLoopId(triple), outputLabel: 0, weight: 0, nextState: state });
      previous = state;
    }
    graph.addArc(previous, { inputLabel: 0, outputLabel: 0, weight: 0, nextState: 0 });
  }
  const silence = graph.addState();
  const silenceTriple: Triple = [SIL_PHONE, 0, 0];
  graph.addArc(0, { inputLabel: forwardId(silenceTriple), outputLabel: 0, weight: SIL_ENTRY_COST, nextState: silence });
  graph.addArc(silence, { inputLabel: selfLoopId(silenceTriple), outputLabel: 0, weight: 0, nextState: silence });
  graph.addArc(silence, { inputLabel: 0, outputLabel: 0, weight: 0, nextState: 0 });
  return graph.states;
}

interface Pronunciation {
  phone: number;
  pdf: number;
  word: number;
  cost: number;
}

/** Writes a tone model into `dir` (created if needed; existing files are overwritten). */
export async function writeToneModel(dir: string, options: ToneModelOptions = {}): Promise<ToneModelInfo> {
  const words = options.words ?? DEFAULT_TONE_WORDS;
  validateWords(words);
  const tones = toneTable(words);
  const hasUnk = options.noUnk !== true;
  const isFbank = options.fbank === true;
  const numWords = words.length;

  // Phone 1 is silence, phone 1+k is word k, phone K+2 is "[unk]" (reusing the word pdfs).
  const wordPhones = words.map((_, k) => k + 2);
  const unkPhone = numWords + 2;
  const emittingPhones = hasUnk ? [...wordPhones, unkPhone] : wordPhones;
  const unkWord = numWords + 1;

  // (phone, hmm-state, pdf), which Kaldi requires sorted; transition-state ts owns tids 2ts-1 and 2ts.
  const triples: Triple[] = [[SIL_PHONE, 0, 0]];
  wordPhones.forEach((phone, k) => {
    for (let s = 0; s < WORD_STATES; s++) triples.push([phone, s, k + 1]);
  });
  if (hasUnk) {
    for (let s = 0; s < WORD_STATES; s++) for (let k = 1; k <= numWords; k++) triples.push([unkPhone, s, k]);
  }

  const { weights, bias } = toneModelAffine({ ...options, words });

  const pronunciations: Pronunciation[] = wordPhones.map((phone, k) => ({
    phone,
    pdf: k + 1,
    word: k + 1,
    cost: WORD_ENTRY_COST,
  }));
  if (hasUnk) {
    for (let k = 1; k <= numWords; k++) {
      pronunciations.push({ phone: unkPhone, pdf: k, word: unkWord, cost: UNK_ENTRY_COST });
    }
  }
  const loop = wordLoop(triples, pronunciations);

  const files = new Map<string, string | Buffer>();
  files.set(isFbank ? 'conf/fbank.conf' : 'conf/mfcc.conf', featureConf(!isFbank));
  files.set('conf/model.conf', `${MODEL_CONF.join('\n')}\n`);
  const phoneNames = words.map((word, k) => `${word.toUpperCase()}_T ${k + 2}\n`).join('');
  files.set('graph/phones.txt', `<eps> 0\nSIL 1\n${phoneNames}${hasUnk ? `UNK ${unkPhone}\n` : ''}`);
  files.set(
    'graph/phones/word_boundary.int',
    `${SIL_PHONE} nonword\n${emittingPhones.map((phone) => `${phone} singleton\n`).join('')}`,
  );
  const wordIds = words.map((word, k) => `${word} ${k + 1}\n`).join('');
  files.set('graph/words.txt', `<eps> 0\n${wordIds}${hasUnk ? `[unk] ${unkWord}\n` : ''}`);
  files.set('am/final.mdl', `${transitionModelText(triples, emittingPhones)}\n${nnetText(weights, bias)}\n`);

  if (options.grammar === true) {
    // Lookahead layout: libvosk composes HCLr with Gr (or with a grammar's G) on the fly. Word costs
    // move to Gr; "[unk]" keeps its extra cost in HCLr as a lexicon penalty.
    const hclr = loop.map((state) => ({
      finalWeight: state.finalWeight,
      arcs: state.arcs.map((arc) => ({
        ...arc,
        weight:
          hasUnk && arc.outputLabel === unkWord
            ? UNK_ENTRY_COST - WORD_ENTRY_COST
            : arc.outputLabel !== 0
              ? 0
              : arc.weight,
      })),
    }));
    files.set('graph/HCLr.fst', encodeVectorFst(hclr));
    // Gr's arcs must be sorted by input label, or OpenFst exits the process during composition.
    const grammarWords = hasUnk ? numWords + 1 : numWords;
    const gr: FstState[] = [
      {
        finalWeight: 0,
        arcs: Array.from({ length: grammarWords }, (_, i) => ({
          inputLabel: i + 1,
          outputLabel: i + 1,
          weight: WORD_ENTRY_COST,
          nextState: 0,
        })),
      },
    ];
    files.set('graph/Gr.fst', encodeVectorFst(gr));
    // No disambiguation symbols, but newer libvosk fails when this file is unreadable.
    files.set('graph/disambig_tid.int', '');
  } else {
    files.set('graph/HCLG.fst', encodeVectorFst(loop));
  }
  files.set('tones.json', encodeToneTable(tones));

  await writeFiles(dir, files);
  return { dir, tones };
}

async function writeFiles(dir: string, files: ReadonlyMap<string, string | Buffer>): Promise<void> {
  await mkdir(join(dir, 'graph', 'phones'), { recursive: true });
  await mkdir(join(dir, 'am'), { recursive: true });
  await mkdir(join(dir, 'conf'), { recursive: true });
  for (const [name, content] of files) await writeFile(join(dir, name), content);
}

// --- Speaker model -----------------------------------------------------------------------------------

const SPEAKER_VECTOR_DIM = 8;

/**
 * Writes a tiny speaker (x-vector) model for vosk_spk_model_new: the "x-vector" is the per-utterance
 * standard deviation of the first 8 cepstra over non-silence frames. Deterministic, meaningless as a
 * speaker identity. Standard deviations rather than means, because the sliding CMN makes means ~0 and
 * Vosk's length normalisation would then divide by ~0.
 */
export async function writeSpeakerModel(dir: string): Promise<void> {
  const n = NUM_BINS;
  const dim = SPEAKER_VECTOR_DIM;
  // The pooled statistics are [means (n), stddevs (n)]: pick stddevs 0..dim-1.
  const pick = Array.from({ length: dim }, (_, i) => {
    const row = new Array<number>(2 * n).fill(0);
    row[n + i] = 1;
    return row;
  });
  const identity = Array.from({ length: dim }, (_, i) => {
    const row = new Array<number>(dim).fill(0);
    row[i] = 1;
    return row;
  });
  const zeros = new Array<number>(dim).fill(0);
  const raw = [
    '<Nnet3> ',
    `input-node name=input dim=${n}`,
    'component-node name=stats-extraction component=stats-extraction input=input',
    'component-node name=stats-pooling component=stats-pooling input=stats-extraction',
    'component-node name=affine component=affine input=stats-pooling',
    'output-node name=output input=affine objective=linear',
    '',
    '<NumComponents> 3',
    // "Varinance" is Kaldi's own spelling of the token.
    `<ComponentName> stats-extraction <StatisticsExtractionComponent> <InputDim> ${n} <InputPeriod> 1 <OutputPeriod> 1 <IncludeVarinance> T </StatisticsExtractionComponent>`,
    `<ComponentName> stats-pooling <StatisticsPoolingComponent> <InputDim> ${2 * n + 1} <InputPeriod> 1 <LeftContext> 0 <RightContext> 10000 <NumLogCountFeatures> 0 <OutputStddevs> T <VarianceFloor> 1e-10 </StatisticsPoolingComponent>`,
    `<ComponentName> affine <AffineComponent> <LearningRate> 0.001 <LinearParams> ${kaldiMatrix(pick, MODEL_NUMBER_PRECISION)}`,
    `<BiasParams> ${kaldiVector(zeros, MODEL_NUMBER_PRECISION)}`,
    '</AffineComponent>',
    '</Nnet3> ',
  ];
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'mfcc.conf'), featureConf(true));
  await writeFile(join(dir, 'final.ext.raw'), `${raw.join('\n')}\n`);
  await writeFile(join(dir, 'mean.vec'), `${kaldiVector(zeros, MODEL_NUMBER_PRECISION)}\n`);
  await writeFile(join(dir, 'transform.mat'), `${kaldiMatrix(identity, MODEL_NUMBER_PRECISION)}\n`);
}
