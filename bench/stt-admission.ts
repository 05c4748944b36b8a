// Issue 13: does admission protect a fresh server, and does it hold steady under sustained overload?
//
//   npx tsx bench/stt-admission.ts [--model bench|tone] [--workers 2] [--capacity N] [--soak-minutes 10] [--seconds 8] [--layers N] [--extensions all|none]
//
// In one run, side by side:
// 1. the ceiling: libvosk in a tight loop on one thread of this process (bench/lib/stt-loop.ts), in
//    audio-s per CPU-s; the CPU limit in real-time streams is that times min(workers, cores);
// 2. a fresh server (nothing learned, only its start-up calibration) offered 1.5x `capacity` speakers at
//    once (within 1 s, real time, `--seconds` of tone speech each): admitted / refused / p99 / transcripts;
// 3. the same burst again right after; then half the capacity of new speakers, which must all be served;
// 4. the soak: 1.5x capacity offered for `--soak-minutes` by speakers that record utterances of 3-9 s,
//    pause 1-3 s and record again (a refusal is retried after 1-2 s): streams arrive and leave all the
//    time. Every 10 s: admitted, refused, p99 message_end -> message_recorded, wrong transcripts; every
//    second: the server's stream_limit and open streams (/api/health). An SVG plots both over time.
// `capacity` defaults to the fresh server's own stream_limit (what its calibration predicts); pass the
// live capacity stt-realtime.ts measured to offer 1.5x that instead.
import { availableParallelism } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { renderChart } from './load/svg-chart.js';
import { forkTsProcess } from './lib/fork-process.js';
import type { RecordingResult } from './lib/stt-client.js';
import { runParallelTightLoops, runTightLoop } from './lib/stt-loop.js';
import { prepareSttModel, toneUtterance, type SttModel } from './lib/stt-model.js';
import { fixed, isoDate, printTable, progress, quantile, summariseRecordings, type RecordingsSummary } from './lib/stt-report.js';
import { loadAverage1m, startSttServer, sttHealth, type SttServer } from './lib/stt-server.js';
import type { SoakCommand, SoakMessage, SoakRecord, SoakSetup } from './lib/stt-soak-process.js';
import type { SpeakersCommand, SpeakersMessage, SpeakersSetup } from './lib/stt-speakers-process.js';

const CHUNK_MS = 100;
const P99_LIMIT_MS = 300;
const START_SPREAD_MS = 1000;
const SPEAKERS_PER_PROCESS = 192;
const SOAK_WINDOW_S = 10;
const SPEAKERS_FILE = fileURLToPath(new URL('./lib/stt-speakers-process.ts', import.meta.url));
const SOAK_FILE = fileURLToPath(new URL('./lib/stt-soak-process.ts', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'bench' },
    workers: { type: 'string', default: '2' },
    capacity: { type: 'string' },
    'soak-minutes': { type: 'string', default: '10' },
    seconds: { type: 'string', default: '8' },
    layers: { type: 'string' },
    // none: the speakers connect as the app does (no transcript_partial), so the server reads no partials.
    extensions: { type: 'string', default: 'all' },
  },
});
if (values.extensions !== 'all' && values.extensions !== 'none') throw new Error('--extensions: expected all or none');
const kind = values.model;
if (kind !== 'tone' && kind !== 'bench') throw new Error(`--model: expected tone or bench, got ${kind}`);
const workers = Number(values.workers);
const utteranceSeconds = Number(values.seconds);
const soakMinutes = Number(values['soak-minutes']);

interface Burst extends RecordingsSummary {
  firstRefusal: string | null;
  limitAfter: number | null;
}

function fork2<C, M>(file: string): { send(command: C): void; on(listener: (message: M) => void): void; exited: Promise<number | null> } {
  const child = forkTsProcess(file);
  return {
    send: (command) => void child.send(command as object),
    on: (listener) => void child.on('message', listener as (message: unknown) => void),
    exited: new Promise((resolve) => child.once('exit', resolve)),
  };
}

/** `speakers` start within 1 s and record one utterance each in real time (stt-realtime.ts's trial). */
async function burst(server: SttServer, model: SttModel, speakers: number, seed: number): Promise<Burst> {
  const processCount = Math.max(1, Math.ceil(speakers / SPEAKERS_PER_PROCESS));
  const all = Array.from({ length: speakers }, (_, index) => ({
    words: toneUtterance(model, utteranceSeconds, seed + index).words,
    startDelayMs: Math.round((index * START_SPREAD_MS) / speakers),
  }));
  const children = Array.from({ length: processCount }, (_, p) => {
    const child = fork2<SpeakersCommand, SpeakersMessage>(SPEAKERS_FILE);
    const setup: SpeakersSetup = { url: server.url, frequenciesHz: [...model.frequenciesHz], speakers: all.filter((_, i) => i % processCount === p), chunkMs: CHUNK_MS };
    let onReady: () => void = () => {};
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    const results = new Promise<RecordingResult[]>((resolve, reject) => {
      child.on((message) => {
        if (message.type === 'ready') onReady();
        else if (message.type === 'done') resolve(message.results);
        else reject(new Error(`speakers process failed: ${message.message}`));
      });
      void child.exited.then((code) => reject(new Error(`speakers process exited with ${code}`)));
    });
    child.send({ type: 'start', setup });
    return { child, ready, results };
  });
  await Promise.all(children.map((c) => Promise.race([c.ready, c.results])));
  for (const c of children) c.child.send({ type: 'go' });
  const results = (await Promise.all(children.map((c) => c.results))).flat();
  const limitAfter = (await sttHealth(server)).limit;
  const result: Burst = {
    ...summariseRecordings(results, speakers),
    firstRefusal: results.find((r) => r.outcome === 'busy')?.errorDetails ?? null,
    limitAfter,
  };
  progress(
    `  offered ${speakers}: admitted ${result.admitted}, busy ${result.busy}, correct ${result.correct}, wrong ${result.wrong}, failed ${result.failed}, timeout ${result.timedOut}, ` +
      `p50 ${fixed(result.p50Ms, 0)} ms, p99 ${fixed(result.p99Ms, 0)} ms, limit after ${limitAfter}, load ${loadAverage1m()}`,
  );
  if (result.firstRefusal !== null) progress(`    first refusal: ${result.firstRefusal}`);
  await waitUntilIdle(server);
  return result;
}

async function waitUntilIdle(server: SttServer): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await sttHealth(server)).open > 0) await new Promise((resolve) => setTimeout(resolve, 100));
}

interface SoakWindow {
  /** Seconds since the soak began (window end). */
  t: number;
  admitted: number;
  busy: number;
  wrong: number;
  failedOrTimedOut: number;
  p99Ms: number | null;
  /** stream_limit and open streams, averaged over the window's one-second samples. */
  limit: number | null;
  open: number;
}

async function soak(server: SttServer, model: SttModel, capacity: number, minutes: number): Promise<{ speakers: number; windows: SoakWindow[]; records: number }> {
  const pauseMs: [number, number] = [1000, 3000];
  const lengths = [3, 4, 5, 6, 7, 8, 9];
  // Speakers talk about mean(lengths) / (mean(lengths) + mean pause) of the time: offer 1.5x capacity streams.
  const meanTalk = lengths.reduce((a, b) => a + b, 0) / lengths.length;
  const duty = meanTalk / (meanTalk + (pauseMs[0] + pauseMs[1]) / 2000);
  const speakers = Math.ceil((1.5 * capacity) / duty);
  const utterances = lengths.flatMap((seconds) => [0, 1, 2].map((offset) => toneUtterance(model, seconds, offset * 5 + seconds).words));
  const start = Date.now();
  const until = start + minutes * 60_000;
  const processCount = Math.max(1, Math.ceil(speakers / SPEAKERS_PER_PROCESS));
  const records: SoakRecord[] = [];
  const samples: Array<{ t: number; limit: number | null; open: number }> = [];
  progress(`  soak: ${speakers} speakers (talking ${fixed(duty * 100, 0)} % of the time: ~${Math.round(speakers * duty)} streams wanted) for ${minutes} min`);
  const children = Array.from({ length: processCount }, (_, p) => {
    const child = fork2<SoakCommand, SoakMessage>(SOAK_FILE);
    const setup: SoakSetup = {
      url: server.url,
      frequenciesHz: [...model.frequenciesHz],
      utterances,
      speakers: Math.floor(speakers / processCount) + (p < speakers % processCount ? 1 : 0),
      seed: 1000 + p,
      chunkMs: CHUNK_MS,
      pauseMs,
      retryMs: [1000, 2000],
      untilEpochMs: until,
    };
    let onReady: () => void = () => {};
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    const done = new Promise<void>((resolve, reject) => {
      child.on((message) => {
        if (message.type === 'ready') onReady();
        else if (message.type === 'results') records.push(...message.records);
        else if (message.type === 'done') resolve();
        else reject(new Error(`soak process failed: ${message.message}`));
      });
      void child.exited.then((code) => reject(new Error(`soak process exited with ${code}`)));
    });
    child.send({ type: 'start', setup });
    return { child, ready, done };
  });
  await Promise.all(children.map((c) => c.ready));
  const goAt = Date.now();
  for (const c of children) c.child.send({ type: 'go' });
  const sampler = setInterval(() => {
    void sttHealth(server).then((h) => samples.push({ t: (Date.now() - goAt) / 1000, ...h }), () => {});
  }, 1000);
  const reporter = setInterval(() => progress(`    ${fixed((Date.now() - goAt) / 1000, 0)} s: ${records.length} recordings, limit ${samples.at(-1)?.limit}, open ${samples.at(-1)?.open}`), 30_000);
  await Promise.all(children.map((c) => c.done));
  clearInterval(sampler);
  clearInterval(reporter);
  const windows: SoakWindow[] = [];
  const lastT = Math.max(0, ...records.map((r) => (r.atEpochMs - goAt) / 1000));
  for (let end = SOAK_WINDOW_S; end < lastT + SOAK_WINDOW_S; end += SOAK_WINDOW_S) {
    const inWindow = records.filter((r) => (r.atEpochMs - goAt) / 1000 >= end - SOAK_WINDOW_S && (r.atEpochMs - goAt) / 1000 < end);
    const sampled = samples.filter((s) => s.t >= end - SOAK_WINDOW_S && s.t < end);
    const latencies = inWindow.filter((r) => r.outcome !== 'busy' && r.latencyMs !== null).map((r) => r.latencyMs!);
    const limits = sampled.map((s) => s.limit).filter((l): l is number => l !== null);
    windows.push({
      t: end,
      admitted: inWindow.filter((r) => r.outcome !== 'busy').length,
      busy: inWindow.filter((r) => r.outcome === 'busy').length,
      wrong: inWindow.filter((r) => r.outcome === 'wrong').length,
      failedOrTimedOut: inWindow.filter((r) => r.outcome === 'failed' || r.outcome === 'timeout').length,
      p99Ms: latencies.length === 0 ? null : quantile(latencies, 0.99),
      limit: limits.length === 0 ? null : limits.reduce((a, b) => a + b, 0) / limits.length,
      open: sampled.length === 0 ? 0 : sampled.reduce((a, s) => a + s.open, 0) / sampled.length,
    });
  }
  return { speakers, windows, records: records.length };
}

const model = await prepareSttModel({ kind, ...(kind === 'bench' && values.layers !== undefined ? { layers: Number(values.layers) } : {}) }, progress);
progress(`${model.label}, MAX_WORKERS=${workers}: libvosk tight loop`);
const loopAudio = Array.from({ length: kind === 'bench' ? 4 : 16 }, (_, i) => toneUtterance(model, utteranceSeconds, i).pcm);
const loop = runTightLoop(model.dir, loopAudio, CHUNK_MS);
const cores = Math.min(workers, availableParallelism());
const cpuLimit = Math.floor(cores * loop.audioPerCpuSecond);
// As many loops at once as cores: the CPU limit assumes they scale by the core count, and on a shared VM
// they may not (the figure gives the limit's own uncertainty; the one at the end, its drift).
const parallel = await runParallelTightLoops(model.dir, loopAudio, cores, CHUNK_MS);
progress(
  `  ${fixed(loop.audioPerCpuSecond, 1)} audio-s per CPU-s: CPU limit ${cpuLimit} real-time streams on ${cores} cores; ` +
    `${cores} loops at once ${fixed(parallel.audioPerWallSecond, 1)} audio-s per wall-s (x ${fixed(parallel.audioPerWallSecond / loop.audioPerCpuSecond, 2)})`,
);

const server = await startSttServer({ modelDir: model.dir, workers, partials: values.extensions === 'all' });
let result: Record<string, unknown>;
try {
  const seeded = (await sttHealth(server)).limit;
  const capacity = values.capacity === undefined ? (seeded ?? 1) : Number(values.capacity);
  const offered = Math.ceil(1.5 * capacity);
  progress(`  fresh server: stream_limit ${seeded} (start-up calibration); capacity used ${capacity}; offering ${offered} at once`);
  const first = await burst(server, model, offered, 0);
  const second = await burst(server, model, offered, 500);
  const after = await burst(server, model, Math.max(1, Math.floor(capacity / 2)), 900);
  const soaked = soakMinutes > 0 ? await soak(server, model, capacity, soakMinutes) : null;
  result = { loopAudioPerCpuSecond: loop.audioPerCpuSecond, parallelLoopAudioPerWallSecond: parallel.audioPerWallSecond, cores, cpuLimit, seededLimit: seeded, capacity, first, second, after, soak: soaked };
} finally {
  await server.stop();
}
// The machine's speed at the end too: a soak spans minutes in which it may move.
const loopAfter = runTightLoop(model.dir, loopAudio, CHUNK_MS).audioPerCpuSecond;
result.loopAfterAudioPerCpuSecond = loopAfter;
progress(`  libvosk tight loop after the run: ${fixed(loopAfter, 1)} audio-s per CPU-s`);

const { first, second, after, soak: soaked } = result as { first: Burst; second: Burst; after: Burst; soak: Awaited<ReturnType<typeof soak>> | null };
const date = isoDate();
const row = (name: string, b: Burst): string[] => [name, String(b.offered), String(b.admitted), String(b.busy), `${b.correct} / ${b.wrong} / ${b.failed + b.timedOut}`, `${fixed(b.p50Ms, 0)} / ${fixed(b.p99Ms, 0)} / ${fixed(b.maxMs, 0)}`, String(b.limitAfter)];
process.stdout.write(
  `\nAdmission (${date} UTC, ${model.label}, MAX_WORKERS=${workers}): libvosk loop ${fixed(loop.audioPerCpuSecond, 1)} audio-s per CPU-s ` +
    `(${fixed(loopAfter, 1)} after the run; ${cores} at once x ${fixed(parallel.audioPerWallSecond / loop.audioPerCpuSecond, 2)}), CPU limit ${cpuLimit} streams, ` +
    `fresh stream_limit ${String(result.seededLimit)}, capacity used ${String(result.capacity)}\n\n`,
);
printTable(['', 'offered', 'admitted', 'refused', 'correct / wrong / failed', 'latency p50 / p99 / max (ms)', 'stream_limit after'], [row('fresh server, burst 1', first), row('burst 2', second), row('new speakers after', after)]);
if (soaked !== null) {
  const admitted = soaked.windows.reduce((a, w) => a + w.admitted, 0);
  const busy = soaked.windows.reduce((a, w) => a + w.busy, 0);
  const wrong = soaked.windows.reduce((a, w) => a + w.wrong + w.failedOrTimedOut, 0);
  const p99s = soaked.windows.map((w) => w.p99Ms).filter((p): p is number => p !== null);
  const limits = soaked.windows.map((w) => w.limit).filter((l): l is number => l !== null);
  process.stdout.write(
    `\nSoak: ${soaked.speakers} speakers for ${soakMinutes} min, ${soaked.records} recordings: ${admitted} admitted, ${busy} refused, ${wrong} wrong/failed; ` +
      `p99 per ${SOAK_WINDOW_S} s window max ${fixed(Math.max(...p99s), 0)} ms (${p99s.filter((p) => p >= P99_LIMIT_MS).length} of ${p99s.length} windows >= ${P99_LIMIT_MS} ms); ` +
      `stream_limit min / max ${fixed(Math.min(...limits), 0)} / ${fixed(Math.max(...limits), 0)}\n`,
  );
  mkdirSync(RESULTS_DIR, { recursive: true });
  const svg = renderChart(
    `Admission under 1.5x capacity for ${soakMinutes} min (${model.label}, ${workers} workers)`,
    `${date} UTC; ${soaked.speakers} speakers; libvosk loop ${fixed(loop.audioPerCpuSecond, 1)} audio-s/CPU-s; ${SOAK_WINDOW_S} s windows`,
    [
      {
        title: 'streams: limit and open',
        xLabel: 'time (s)',
        yLabel: 'streams',
        series: [
          { label: 'stream_limit', color: '#c60', dashed: false, points: soaked.windows.map((w) => [w.t, w.limit]) },
          { label: 'open streams', color: '#06c', dashed: true, points: soaked.windows.map((w) => [w.t, w.open]) },
        ],
      },
      {
        title: 'message_end -> message_recorded p99',
        xLabel: 'time (s)',
        yLabel: 'latency (ms)',
        thresholdMs: P99_LIMIT_MS,
        series: [{ label: 'p99 of admitted', color: '#090', dashed: false, points: soaked.windows.map((w) => [w.t, w.p99Ms]) }],
      },
      {
        title: `recordings per ${SOAK_WINDOW_S} s`,
        xLabel: 'time (s)',
        yLabel: 'recordings',
        series: [
          { label: 'admitted', color: '#090', dashed: false, points: soaked.windows.map((w) => [w.t, w.admitted]) },
          { label: 'refused (STT_SERVICE_BUSY)', color: '#c00', dashed: true, points: soaked.windows.map((w) => [w.t, w.busy]) },
        ],
      },
    ],
  );
  const svgPath = `${RESULTS_DIR}stt-admission-${kind}-${date.slice(0, 10)}.svg`;
  writeFileSync(svgPath, svg);
  progress(`  chart: ${svgPath}`);
}
process.stdout.write(`${JSON.stringify({ bench: 'stt-admission', date: new Date().toISOString(), model: model.label, workers, utteranceSeconds, chunkMs: CHUNK_MS, soakMinutes, extensions: values.extensions, ...result })}\n`);
