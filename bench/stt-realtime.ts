// Issue 4 (b) and (c): how many real-time speakers one server serves with p99 message_end ->
// message_recorded under 300 ms, with the worker pool and without it; then what happens past that.
//
//   npx tsx bench/stt-realtime.ts [--models tone,bench] [--workers 2,0] [--seconds 8] [--layers N] [--speakers N,...] [--extensions all|none]
//
// One voxgate child process per (model, MAX_WORKERS), reused across trials (after one warm-up stream, so
// admission control knows the decode cost). A trial: N speakers on their own connections, played by
// child processes of this bench, start within 1 s of each other and send tone speech in real time
// (100 ms binary frames, each when its audio has been spoken), then message_end. A trial passes when
// every speaker was admitted, every transcript is exact and p99 latency < 300 ms. N grows by 25 % until
// a trial fails, then is bisected to within 5 %. Past capacity (pool only) 1.5x the capacity is offered:
// message_start refusals (STT_SERVICE_BUSY) are counted and the admitted speakers' latency reported.
// `--speakers` runs trials of exactly those sizes instead (no search, no overload trial): for profiling.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { forkTsProcess } from './lib/fork-process.js';
import { SttBenchClient, type RecordingResult } from './lib/stt-client.js';
import { runParallelTightLoops, runTightLoop } from './lib/stt-loop.js';
import { prepareSttModel, toneUtterance, type SttModel, type SttModelKind } from './lib/stt-model.js';
import { fixed, isoDate, printTable, progress, summariseRecordings, type RecordingsSummary } from './lib/stt-report.js';
import { loadAverage1m, processCpuSeconds, startSttServer, sttHealth, type SttServer } from './lib/stt-server.js';
import type { SpeakersCommand, SpeakersMessage, SpeakersSetup } from './lib/stt-speakers-process.js';

const CHUNK_MS = 100;
const P99_LIMIT_MS = 300;
const START_SPREAD_MS = 1000;
const SPEAKERS_PER_CLIENT_PROCESS = 192;
const SPEAKERS_PROCESS_FILE = fileURLToPath(new URL('./lib/stt-speakers-process.ts', import.meta.url));

/** First N tried, the most tried, and the figures to compare with, per model and pool/no pool. */
const PLAN: Record<SttModelKind, { firstTry: { pool: number; main: number }; maxTry: number; target: number; reference: string }> = {
  tone: { firstTry: { pool: 320, main: 192 }, maxTry: 2048, target: 512, reference: '192' },
  bench: { firstTry: { pool: 28, main: 14 }, maxTry: 96, target: 34, reference: '24-30' },
};

interface Trial extends RecordingsSummary {
  /** Server CPU seconds per wall second during the trial (2 = both cores). */
  serverCpuPerWallSecond: number;
  /** The same for the server's main thread alone (JSON, uWS, events: every stream passes through it). */
  mainThreadCpuPerWallSecond: number;
  /** CPU seconds per wall second of the speaker processes (they share the machine with the server). */
  clientCpuPerWallSecond: number;
  loadAverage: number;
  passed: boolean;
}

interface ConfigResult {
  model: string;
  workers: number;
  /**
   * libvosk's one-thread tight loop in this run (audio-s per CPU-s: the mean of a loop before the model's
   * trials and one after them, both kept), and the CPU limit it gives in streams (that rate x cores).
   */
  loopAudioPerCpuSecond: number;
  loopsAudioPerCpuSecond: [number, number];
  /** As many loops as cores at once, right after the loop before the trials: audio-s per wall-s together. */
  parallelLoopAudioPerWallSecond: number;
  cpuLimit: number;
  capacity: number;
  target: number;
  reference: string;
  atCapacity: Trial | null;
  trials: Trial[];
  beyond: Trial | null;
  /** After the overload trial: is a single new speaker admitted and served again? */
  recoversAfterOverload: boolean | null;
  /** Trials (by N offered) after which the server refused every new recording (it was restarted). */
  stuckAfter: number[];
}

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'tone,bench' },
    workers: { type: 'string', default: '2,0' },
    seconds: { type: 'string', default: '8' },
    layers: { type: 'string' },
    speakers: { type: 'string' },
    // none: the speakers connect as the app does (no transcript_partial), so the server reads no partials.
    extensions: { type: 'string', default: 'all' },
  },
});
if (values.extensions !== 'all' && values.extensions !== 'none') throw new Error('--extensions: expected all or none');
const utteranceSeconds = Number(values.seconds);
const layers = values.layers === undefined ? undefined : Number(values.layers);
const fixedSpeakers = values.speakers?.split(',').map(Number) ?? null;

/** A child process playing `setup.speakers`; `go()` starts them once `onReady` was called. */
function runSpeakersProcess(setup: SpeakersSetup, onReady: () => void): { go(): void; results: Promise<RecordingResult[]>; cpuSeconds(): number } {
  const child = forkTsProcess(SPEAKERS_PROCESS_FILE);
  const send = (command: SpeakersCommand): void => void child.send(command);
  let cpuAtGo = 0;
  let cpuUsed = 0;
  const results = new Promise<RecordingResult[]>((resolve, reject) => {
    child.on('message', (message: SpeakersMessage) => {
      if (message.type === 'ready') onReady();
      else if (message.type === 'done') {
        cpuUsed = processCpuSeconds(child.pid!) - cpuAtGo;
        resolve(message.results);
      }
      else reject(new Error(`speakers process failed: ${message.message}`));
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`speakers process exited with ${code}`)));
  });
  send({ type: 'start', setup });
  return {
    go: () => {
      cpuAtGo = processCpuSeconds(child.pid!);
      send({ type: 'go' });
    },
    results,
    cpuSeconds: () => cpuUsed,
  };
}

async function runTrial(server: SttServer, model: SttModel, speakers: number, seed: number, seconds = utteranceSeconds): Promise<Trial> {
  const processCount = Math.max(1, Math.ceil(speakers / SPEAKERS_PER_CLIENT_PROCESS));
  const all = Array.from({ length: speakers }, (_, index) => ({
    words: toneUtterance(model, seconds, seed + index).words,
    startDelayMs: Math.round((index * START_SPREAD_MS) / speakers),
  }));
  let ready = 0;
  let onAllReady: () => void = () => {};
  const allReady = new Promise<void>((resolve) => (onAllReady = resolve));
  const processes = Array.from({ length: processCount }, (_, t) =>
    runSpeakersProcess(
      {
        url: server.url,
        frequenciesHz: [...model.frequenciesHz],
        speakers: all.filter((_, index) => index % processCount === t),
        chunkMs: CHUNK_MS,
      },
      () => {
        ready += 1;
        if (ready === processCount) onAllReady();
      },
    ),
  );
  await Promise.race([allReady, ...processes.map((child) => child.results)]);
  const loadAverage = loadAverage1m();
  const cpu0 = server.cpuSeconds();
  const threads0 = server.threadCpuSeconds();
  const wall0 = performance.now();
  for (const child of processes) child.go();
  const results = (await Promise.all(processes.map((child) => child.results))).flat();
  const wallSeconds = (performance.now() - wall0) / 1000;
  const serverCpuPerWallSecond = (server.cpuSeconds() - cpu0) / wallSeconds;
  const threadCores = [...server.threadCpuSeconds()].map(([tid, seconds]) => ({ tid, cores: (seconds - (threads0.get(tid) ?? 0)) / wallSeconds }));
  const mainThreadCpuPerWallSecond = threadCores.find((thread) => thread.tid === server.pid)?.cores ?? 0;
  const otherThreads = threadCores.filter((thread) => thread.tid !== server.pid && thread.cores >= 0.01).sort((a, b) => b.cores - a.cores);
  const clientCpuPerWallSecond = processes.reduce((sum, child) => sum + child.cpuSeconds(), 0) / wallSeconds;
  const trial: Trial = {
    ...summariseRecordings(results, speakers),
    serverCpuPerWallSecond,
    mainThreadCpuPerWallSecond,
    clientCpuPerWallSecond,
    loadAverage,
    passed: false,
  };
  trial.passed = trial.correct === speakers && trial.p99Ms < P99_LIMIT_MS;
  progress(
    `  N=${speakers}: admitted ${trial.admitted}, busy ${trial.busy}, correct ${trial.correct}, wrong ${trial.wrong}, failed ${trial.failed}, ` +
      `timeout ${trial.timedOut}, p50 ${fixed(trial.p50Ms, 0)} ms, p99 ${fixed(trial.p99Ms, 0)} ms, server CPU ${fixed(serverCpuPerWallSecond, 2)}/s (main thread ${fixed(mainThreadCpuPerWallSecond, 2)}, others ${otherThreads.map((thread) => fixed(thread.cores, 2)).join(' ')}), clients ${fixed(clientCpuPerWallSecond, 2)}/s, ` +
      `load ${trial.loadAverage} -> ${trial.passed ? 'pass' : 'fail'}`,
  );
  const firstRefusal = results.find((result) => result.outcome === 'busy');
  if (firstRefusal !== undefined) progress(`    first refusal: ${firstRefusal.errorDetails ?? '(no details)'}`);
  await waitUntilIdle(server);
  return trial;
}

/** Waits until the server has no open speech streams (finished recordings free them asynchronously). */
async function waitUntilIdle(server: SttServer): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const health = (await server.health()) as { stt?: { activeStreams?: number } };
    if ((health.stt?.activeStreams ?? 0) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Does the server admit one new recording now? (message_start answered with recording_message.) */
async function admitsOneMore(server: SttServer): Promise<boolean> {
  const client = await SttBenchClient.connect(server.url);
  try {
    await client.startConversation();
    const result = await client.record({ pcm: Buffer.alloc(0), expectedText: '', chunkMs: CHUNK_MS, pacing: { kind: 'realtime' } });
    return result.outcome !== 'busy';
  } finally {
    client.close();
  }
}

async function startWarmServer(model: SttModel, workers: number): Promise<SttServer> {
  const server = await startSttServer({ modelDir: model.dir, workers, partials: values.extensions === 'all' });
  // Admission measures the decode cost only on busy workers (one speaker alone reads cheaper than many
  // sharing the cores): warm up with as many speakers as the fresh server admits, for 4 s.
  const { limit } = await sttHealth(server);
  await runTrial(server, model, Math.max(1, limit ?? 1), 0, 4);
  return server;
}

/** A configuration's trials; the loop figures are added by the caller. */
type MeasuredConfig = Omit<ConfigResult, 'loopAudioPerCpuSecond' | 'loopsAudioPerCpuSecond' | 'parallelLoopAudioPerWallSecond' | 'cpuLimit'>;

async function measureConfig(model: SttModel, workers: number): Promise<MeasuredConfig> {
  const plan = PLAN[model.kind];
  let server = await startWarmServer(model, workers);
  const stuckAfter: number[] = [];
  // A trial can leave the server refusing every new recording for good (a worker's measured load is
  // only updated by batches, so it stays above the limit once the last stream ends): then restart it.
  const restartIfStuck = async (trial: Trial): Promise<void> => {
    if (await admitsOneMore(server)) return;
    stuckAfter.push(trial.offered);
    progress(`  after N=${trial.offered} the server refuses every new recording: restarting it`);
    await server.stop();
    server = await startWarmServer(model, workers);
  };
  try {
    const trials: Trial[] = [];
    let passing: Trial | null = null;
    let failing: Trial | null = null;
    let n = workers === 0 ? plan.firstTry.main : plan.firstTry.pool;
    if (fixedSpeakers !== null) {
      for (const speakers of fixedSpeakers) trials.push(await runTrial(server, model, speakers, trials.length * 7));
    }
    // Grow until a trial fails, then bisect between the last pass and the first fail.
    while (fixedSpeakers === null) {
      const trial = await runTrial(server, model, n, trials.length * 7);
      trials.push(trial);
      await restartIfStuck(trial);
      if (trial.passed) passing = passing === null || trial.offered > passing.offered ? trial : passing;
      else failing = failing === null || trial.offered < failing.offered ? trial : failing;
      if (failing === null) {
        if (n >= plan.maxTry) break;
        n = Math.min(plan.maxTry, Math.ceil(n * 1.25));
      } else if (passing === null) {
        if (n <= 1) break;
        n = Math.max(1, Math.floor(n * 0.75));
      } else {
        if (failing.offered - passing.offered <= Math.max(1, Math.floor(passing.offered * 0.05))) break;
        n = Math.floor((passing.offered + failing.offered) / 2);
      }
    }
    const capacity = passing?.offered ?? 0;
    let beyond: Trial | null = null;
    let recoversAfterOverload: boolean | null = null;
    if (workers > 0 && capacity > 0 && fixedSpeakers === null) {
      progress(`  beyond capacity: offering ${Math.ceil(capacity * 1.5)}`);
      beyond = await runTrial(server, model, Math.ceil(capacity * 1.5), 1000);
      recoversAfterOverload = (await runTrial(server, model, 1, 2000)).passed;
      if (!recoversAfterOverload) stuckAfter.push(beyond.offered);
    }
    return {
      model: model.label,
      workers,
      capacity,
      target: plan.target,
      reference: plan.reference,
      atCapacity: passing,
      trials,
      beyond,
      recoversAfterOverload,
      stuckAfter,
    };
  } finally {
    await server.stop();
  }
}

const configs: ConfigResult[] = [];
for (const kind of values.models.split(',')) {
  if (kind !== 'tone' && kind !== 'bench') throw new Error(`--models: unknown model ${kind}`);
  const model = await prepareSttModel({ kind, ...(kind === 'bench' && layers !== undefined ? { layers } : {}) }, progress);
  // The ceiling, measured in this run so capacity can be compared as a ratio (machines and load differ):
  // one loop before and one after the trials (this machine's speed moves within minutes), and as many
  // loops at once as there are cores (the nominal limit assumes they scale by the core count).
  const loopAudio = Array.from({ length: kind === 'bench' ? 4 : 16 }, (_, i) => toneUtterance(model, utteranceSeconds, i).pcm);
  const before = runTightLoop(model.dir, loopAudio, CHUNK_MS).audioPerCpuSecond;
  const parallel = await runParallelTightLoops(model.dir, loopAudio, availableParallelism(), CHUNK_MS);
  progress(`${model.label}: libvosk tight loop ${fixed(before, 1)} audio-s per CPU-s; ${parallel.threads} at once ${fixed(parallel.audioPerWallSecond, 1)} audio-s per wall-s (x ${fixed(parallel.audioPerWallSecond / before, 2)})`);
  const measured: MeasuredConfig[] = [];
  for (const workers of values.workers.split(',').map(Number)) {
    progress(`${model.label}, MAX_WORKERS=${workers}:`);
    measured.push(await measureConfig(model, workers));
  }
  const after = runTightLoop(model.dir, loopAudio, CHUNK_MS).audioPerCpuSecond;
  progress(`${model.label}: libvosk tight loop after the trials ${fixed(after, 1)} audio-s per CPU-s`);
  const loopRate = (before + after) / 2;
  for (const config of measured) {
    const cpuLimit = Math.floor(Math.max(1, Math.min(config.workers, availableParallelism())) * loopRate);
    configs.push({ ...config, loopAudioPerCpuSecond: loopRate, loopsAudioPerCpuSecond: [before, after], parallelLoopAudioPerWallSecond: parallel.audioPerWallSecond, cpuLimit });
  }
}

const label = (config: ConfigResult): string => `${config.model}, MAX_WORKERS=${config.workers}`;
const latency = (trial: Trial | null): string => (trial === null ? '-' : `${fixed(trial.p50Ms, 0)} / ${fixed(trial.p99Ms, 0)} / ${fixed(trial.maxMs, 0)}`);
process.stdout.write(
  `\nReal-time speakers per server (${isoDate()} UTC, ${utteranceSeconds} s utterances, ${CHUNK_MS} ms frames, p99 message_end -> message_recorded < ${P99_LIMIT_MS} ms, every transcript exact)\n\n`,
);
printTable(
  ['', ...configs.map(label)],
  [
    ['capacity: most real-time speakers passing', ...configs.map((config) => String(config.capacity))],
    ['libvosk loop audio-s per CPU-s (before, after); CPU limit (streams); capacity / CPU limit', ...configs.map((config) => `${fixed(config.loopAudioPerCpuSecond, 1)} (${config.loopsAudioPerCpuSecond.map((rate) => fixed(rate, 1)).join(', ')}); ${config.cpuLimit}; ${fixed(config.capacity / config.cpuLimit, 2)}`)],
    [`${availableParallelism()} loops at once: audio-s per wall-s (x one loop); capacity / that`, ...configs.map((config) => `${fixed(config.parallelLoopAudioPerWallSecond, 1)} (x ${fixed(config.parallelLoopAudioPerWallSecond / config.loopsAudioPerCpuSecond[0], 2)} the loop before); ${fixed(config.capacity / config.parallelLoopAudioPerWallSecond, 2)}`)],
    ['target (pool) / reference vosk-server', ...configs.map((config) => (config.workers > 0 ? `>= ${config.target} / ${config.reference}` : `- / ${config.reference}`))],
    ['at capacity: latency p50 / p99 / max (ms)', ...configs.map((config) => latency(config.atCapacity))],
    ['at capacity: CPU-s per wall-s, server / speaker processes', ...configs.map((config) => `${fixed(config.atCapacity?.serverCpuPerWallSecond, 2)} / ${fixed(config.atCapacity?.clientCpuPerWallSecond, 2)}`)],
    ['Ns tried (pass+ / fail-)', ...configs.map((config) => config.trials.map((trial) => `${trial.offered}${trial.passed ? '+' : '-'}`).join(' '))],
    ['beyond: offered / admitted / STT_SERVICE_BUSY', ...configs.map((config) => (config.beyond === null ? '-' : `${config.beyond.offered} / ${config.beyond.admitted} / ${config.beyond.busy}`))],
    ['beyond: admitted latency p50 / p99 / max (ms)', ...configs.map((config) => latency(config.beyond))],
    ['beyond: wrong / failed / timed out', ...configs.map((config) => (config.beyond === null ? '-' : `${config.beyond.wrong} / ${config.beyond.failed} / ${config.beyond.timedOut}`))],
    ['beyond: reference vosk-server', ...configs.map((config) => (config.workers > 0 ? 'latency grows to seconds, nothing refused' : '-'))],
    ['admits and serves again after the overload', ...configs.map((config) => (config.recoversAfterOverload === null ? '-' : config.recoversAfterOverload ? 'yes' : 'NO'))],
    ['refused everything after trials N= (restarted)', ...configs.map((config) => config.stuckAfter.join(' ') || 'none')],
    ['load average (1 min) during trials', ...configs.map((config) => config.trials.map((trial) => fixed(trial.loadAverage, 1)).join(' '))],
  ],
);
process.stdout.write(`${JSON.stringify({ bench: 'stt-realtime', date: new Date().toISOString(), chunkMs: CHUNK_MS, utteranceSeconds, p99LimitMs: P99_LIMIT_MS, extensions: values.extensions, configs })}\n`);
