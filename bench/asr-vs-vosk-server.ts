// voxgate's /asr against alphacep's vosk-server: the same live-stream client, the same model (tone and
// the bench model), the same audio, one server after the other in one run. Per server and model it
// prints the live-stream capacity (largest stream count with p99 eof -> final under 300 ms and every
// transcript exact), audio seconds per server CPU second over libvosk's own tight loop, per-chunk reply
// latency p50/p99, what happens at 1.5x capacity (refused vs slowed), and the ratios voxgate / vosk-server.
//
//   npx tsx bench/asr-vs-vosk-server.ts [--models tone,bench] [--seconds 5] [--chunk-ms 100]
//                                       [--max-streams 512] [--workers N] [--quick]
//                                       [--steps 16,300 [--servers voxgate]]
//
// --steps runs just those stream counts (each twice, no capacity search): for comparing two commits at
// fixed loads, one after the other (bench/README.md, "/asr frame tasks").
//
// vosk-server must be installed (../shared/peer/vosk-server/setup.sh); without it only voxgate runs.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AsrClient, transcriptOf } from '../test/kit/asr-client.js';
import { findVoskServer, startVoskServer } from '../test/asr/vosk-server.js';
import { prepareSttModel, toneUtterance, type SttModel, type SttModelKind, type ToneUtterance } from './lib/stt-model.js';
import { runTightLoop } from './lib/stt-loop.js';
import { fixed, isoDate, printTable, progress, quantile } from './lib/stt-report.js';
import { loadAverage1m, processCpuSeconds, startSttServer } from './lib/stt-server.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'tone,bench' },
    seconds: { type: 'string', default: '5' },
    'chunk-ms': { type: 'string', default: '100' },
    'max-streams': { type: 'string', default: '512' },
    workers: { type: 'string', default: String(availableParallelism()) },
    quick: { type: 'boolean', default: false },
    steps: { type: 'string' },
    servers: { type: 'string', default: 'voxgate,vosk-server' },
  },
});
const FIXED_STEPS = args.steps?.split(',').map(Number) ?? null;
const SERVERS = new Set(args.servers.split(',').map((name) => name.trim()));
const QUICK = args.quick;
const SECONDS = QUICK ? 2 : Number(args.seconds);
const CHUNK_MS = Number(args['chunk-ms']);
const MAX_STREAMS = QUICK ? 8 : Number(args['max-streams']);
const WORKERS = Number(args.workers);
const P99_LIMIT_MS = 300;
const SAMPLE_RATE = 16000;
const CHUNK_BYTES = (CHUNK_MS * SAMPLE_RATE * 2) / 1000;

interface StreamOutcome {
  refused: boolean;
  isExact: boolean;
  finalMs: number;
  chunkMs: number[];
  audioSeconds: number;
}

interface StepResult {
  streams: number;
  accepted: number;
  refused: number;
  inexact: number;
  p99FinalMs: number;
  maxFinalMs: number;
  chunkP50Ms: number;
  chunkP99Ms: number;
  audioPerCpuSecond: number;
}

interface ServerUnderTest {
  name: 'voxgate' | 'vosk-server';
  url: string;
  cpuSeconds(): number;
  stop(): Promise<void> | void;
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** One live stream: config, chunks at real-time pace whatever the replies do, eof; latencies from the replies. */
async function liveStream(url: string, utterance: ToneUtterance, startDelayMs: number): Promise<StreamOutcome> {
  await delay(startDelayMs);
  const refused: StreamOutcome = { refused: true, isExact: false, finalMs: 0, chunkMs: [], audioSeconds: 0 };
  let client: AsrClient;
  try {
    client = await AsrClient.connect(url);
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 503) return refused;
    throw err;
  }
  client.sendText(JSON.stringify({ config: { sample_rate: SAMPLE_RATE } }));
  const sentAt: number[] = [];
  const startedAt = performance.now();
  const chunks = Math.ceil(utterance.pcm.byteLength / CHUNK_BYTES);
  for (let i = 0; i < chunks; i++) {
    await delay(startedAt + i * CHUNK_MS - performance.now());
    if (client.socket.readyState !== client.socket.OPEN) break;
    client.sendAudio(utterance.pcm.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES));
    sentAt.push(performance.now());
  }
  const eofAt = performance.now();
  if (client.socket.readyState === client.socket.OPEN) client.sendText('{"eof" : 1}');
  const close = await client.closed;
  if (client.replies.length === 0 && close.code === 1013) return refused;
  const chunkMs: number[] = [];
  for (let i = 0; i < Math.min(sentAt.length, client.replyTimes.length); i++) chunkMs.push(client.replyTimes[i]! - sentAt[i]!);
  const isComplete = close.code === 1000 && client.replies.length === chunks + 1;
  return {
    refused: false,
    isExact: isComplete && transcriptOf(client.replies) === utterance.text,
    finalMs: isComplete ? client.replyTimes[chunks]! - eofAt : Number.POSITIVE_INFINITY,
    chunkMs,
    audioSeconds: utterance.audioSeconds,
  };
}

async function runStep(server: ServerUnderTest, model: SttModel, streams: number): Promise<StepResult> {
  const utterances = Array.from({ length: streams }, (_, i) => toneUtterance(model, SECONDS, i));
  const cpu0 = server.cpuSeconds();
  // Starts spread over one chunk interval, as independent callers would be.
  const outcomes = await Promise.all(utterances.map((utterance, i) => liveStream(server.url, utterance, (i * CHUNK_MS) / streams)));
  const cpuSeconds = server.cpuSeconds() - cpu0;
  const accepted = outcomes.filter((outcome) => !outcome.refused);
  const finals = accepted.map((outcome) => outcome.finalMs);
  const chunkLatencies = accepted.flatMap((outcome) => outcome.chunkMs);
  const audioSeconds = accepted.reduce((sum, outcome) => sum + outcome.audioSeconds, 0);
  return {
    streams,
    accepted: accepted.length,
    refused: outcomes.length - accepted.length,
    inexact: accepted.filter((outcome) => !outcome.isExact).length,
    p99FinalMs: quantile(finals, 0.99),
    maxFinalMs: finals.length === 0 ? Number.NaN : Math.max(...finals),
    chunkP50Ms: quantile(chunkLatencies, 0.5),
    chunkP99Ms: quantile(chunkLatencies, 0.99),
    audioPerCpuSecond: cpuSeconds > 0 ? audioSeconds / cpuSeconds : Number.NaN,
  };
}

function passes(step: StepResult): boolean {
  return step.refused === 0 && step.inexact === 0 && step.p99FinalMs < P99_LIMIT_MS;
}

interface ServerFigures {
  server: string;
  capacity: number;
  /** No step failed up to --max-streams: the capacity is at least that. */
  isCapped: boolean;
  atCapacity: StepResult | null;
  overload: StepResult | null;
  steps: StepResult[];
}

/** Doubles the stream count until a step fails, then bisects between the last pass and the first failure. */
async function measureServer(server: ServerUnderTest, model: SttModel): Promise<ServerFigures> {
  const steps: StepResult[] = [];
  const step = async (streams: number): Promise<StepResult> => {
    const result = await runStep(server, model, streams);
    steps.push(result);
    progress(
      `  ${server.name} ${model.label}: ${streams} streams -> accepted ${result.accepted}, refused ${result.refused}, inexact ${result.inexact}, ` +
        `p99 eof->final ${fixed(result.p99FinalMs, 0)} ms, chunk p50 / p99 ${fixed(result.chunkP50Ms, 0)} / ${fixed(result.chunkP99Ms, 0)} ms, ` +
        `${fixed(result.audioPerCpuSecond, 1)} audio-s per CPU-s ${passes(result) ? 'PASS' : 'FAIL'}`,
    );
    return result;
  };
  if (FIXED_STEPS !== null) {
    for (const streams of FIXED_STEPS) for (let round = 0; round < 2; round++) await step(streams);
    return { server: server.name, capacity: Number.NaN, isCapped: false, atCapacity: null, overload: null, steps };
  }
  let good: StepResult | null = null;
  let bad: number | null = null;
  for (let streams = 1; streams <= MAX_STREAMS; streams *= 2) {
    const result = await step(streams);
    if (!passes(result)) {
      bad = streams;
      break;
    }
    good = result;
  }
  let low = good?.streams ?? 0;
  let high = bad ?? low;
  while (bad !== null && high - low > Math.max(1, Math.floor(low / 16))) {
    const middle = Math.floor((low + high) / 2);
    const result = await step(middle);
    if (passes(result)) {
      low = middle;
      good = result;
    } else {
      high = middle;
    }
  }
  const capacity = good?.streams ?? 0;
  const overload = capacity > 0 ? await step(Math.ceil(capacity * 1.5)) : null;
  return { server: server.name, capacity, isCapped: bad === null, atCapacity: good, overload, steps };
}

async function main(): Promise<void> {
  const install = findVoskServer();
  if (typeof install === 'string') progress(`vosk-server skipped: ${install}`);
  const results: ModelResult[] = [];
  for (const kind of args.models.split(',').map((name) => name.trim()) as SttModelKind[]) {
    const model = await prepareSttModel({ kind }, progress);
    const loop = runTightLoop(model.dir, [toneUtterance(model, 10).pcm, toneUtterance(model, 10, 1).pcm], CHUNK_MS);
    progress(`${model.label}: libvosk tight loop ${loop.audioPerCpuSecond.toFixed(1)} audio-s per CPU-s`);
    const figures: ServerFigures[] = [];
    if (SERVERS.has('voxgate')) {
      const voxgate = await startSttServer({ modelDir: model.dir, workers: WORKERS, env: { ASR_SAMPLE_RATE: String(SAMPLE_RATE) } });
      try {
        figures.push(await measureServer({ name: 'voxgate', url: `ws://127.0.0.1:${voxgate.port}/asr`, cpuSeconds: () => voxgate.cpuSeconds(), stop: () => voxgate.stop() }, model));
      } finally {
        await voxgate.stop();
      }
    }
    if (typeof install !== 'string' && SERVERS.has('vosk-server')) {
      const peer = await startVoskServer(install, model.dir, join(model.dir, '..', `vosk-server-${kind}.log`));
      try {
        figures.push(await measureServer({ name: 'vosk-server', url: peer.url, cpuSeconds: () => processCpuSeconds(peer.pid), stop: () => peer.stop() }, model));
      } finally {
        peer.stop();
      }
    }
    results.push({ model: model.label, tightLoop: loop.audioPerCpuSecond, figures });
  }

  process.stdout.write(`\nasr-vs-vosk-server ${isoDate()} UTC, ${availableParallelism()} cores, load average ${loadAverage1m().toFixed(1)}, ` +
    `${SECONDS} s utterances in ${CHUNK_MS} ms chunks, voxgate MAX_WORKERS=${WORKERS}${QUICK ? ' (--quick: smoke scale, not figures)' : ''}\n\n`);
  if (FIXED_STEPS !== null) {
    printStepTable(results);
  } else {
    printCapacityTable(results);
  }
  process.stdout.write(`${JSON.stringify({ date: new Date().toISOString(), quick: QUICK, seconds: SECONDS, chunkMs: CHUNK_MS, workers: WORKERS, results })}\n`);
}

type ModelResult = { model: string; tightLoop: number; figures: ServerFigures[] };

/** --steps: one row per step run. */
function printStepTable(results: readonly ModelResult[]): void {
  const rows: string[][] = [];
  for (const result of results) {
    for (const figure of result.figures) {
      for (const step of figure.steps) {
        rows.push([
          result.model,
          figure.server,
          String(step.streams),
          `${step.accepted} / ${step.refused} / ${step.inexact}`,
          fixed(step.p99FinalMs, 0),
          `${fixed(step.chunkP50Ms, 0)} / ${fixed(step.chunkP99Ms, 0)}`,
          `${fixed(step.audioPerCpuSecond, 1)} (${fixed(step.audioPerCpuSecond / result.tightLoop, 2)}x loop)`,
        ]);
      }
    }
    rows.push([result.model, 'libvosk tight loop', '', '', '', '', fixed(result.tightLoop, 1)]);
  }
  printTable(['model', 'server', 'streams', 'accepted / refused / inexact', 'p99 eof->final (ms)', 'chunk reply p50 / p99 (ms)', 'audio-s per CPU-s'], rows);
}

function printCapacityTable(results: readonly ModelResult[]): void {
  const rows: string[][] = [];
  for (const result of results) {
    for (const figure of result.figures) {
      const at = figure.atCapacity;
      const over = figure.overload;
      rows.push([
        result.model,
        figure.server,
        figure.isCapped ? `>= ${figure.capacity} (--max-streams)` : String(figure.capacity),
        fixed(at?.p99FinalMs, 0),
        at === null ? '-' : `${fixed(at.chunkP50Ms, 0)} / ${fixed(at.chunkP99Ms, 0)}`,
        at === null ? '-' : `${fixed(at.audioPerCpuSecond, 1)} (${fixed(at.audioPerCpuSecond / result.tightLoop, 2)}x loop)`,
        over === null ? '-' : `${over.streams}: ${over.refused} refused, ${over.inexact} inexact, p99 ${fixed(over.p99FinalMs, 0)} ms, max ${fixed(over.maxFinalMs, 0)} ms`,
      ]);
    }
    const [ours, theirs] = result.figures;
    if (ours !== undefined && theirs !== undefined && theirs.capacity > 0) {
      const efficiency = (ours.atCapacity?.audioPerCpuSecond ?? Number.NaN) / (theirs.atCapacity?.audioPerCpuSecond ?? Number.NaN);
      rows.push([result.model, 'ratio voxgate / vosk-server', fixed(ours.capacity / theirs.capacity, 2), '', '', fixed(efficiency, 2), '']);
    }
    rows.push([result.model, `libvosk tight loop`, '', '', '', fixed(result.tightLoop, 1), '']);
  }
  printTable(['model', 'server', 'capacity (streams)', 'p99 eof->final (ms)', 'chunk reply p50 / p99 (ms)', 'audio-s per CPU-s', 'at 1.5x capacity'], rows);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
