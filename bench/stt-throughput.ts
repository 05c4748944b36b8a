// Issue 4 (a): decode throughput of the whole server, as audio seconds decoded per CPU second of the
// server process, divided by the same for libvosk in a tight loop on one thread (the ceiling).
//
//   npx tsx bench/stt-throughput.ts [--models tone,bench] [--workers 2] [--clients 8] [--layers N]
//
// Per model: the tight loop runs in this process first; then voxgate starts as a child process
// (MAX_WORKERS=N) and N WebSocket clients each record a few long utterances, sending 100 ms binary
// frames as fast as the server shows progress (at most 3 s of audio past what transcript_partial proves
// decoded, so the 4 s per-stream buffer never overflows). CPU = utime + stime of the server process over
// the window from the first frame to the last message_recorded. Prints a table and one JSON line.
import { parseArgs } from 'node:util';

import { runTightLoop } from './lib/stt-loop.js';
import { prepareSttModel, toneUtterance, type SttModel, type SttModelKind } from './lib/stt-model.js';
import { SttBenchClient, type RecordingResult } from './lib/stt-client.js';
import { fixed, isoDate, printTable, progress } from './lib/stt-report.js';
import { blasEnvironment, loadAverage1m, startSttServer } from './lib/stt-server.js';

const CHUNK_MS = 100;
const AHEAD_MS = 3000;
const RETRY_AFTER_MS = 50;
const RETRY_FOR_MS = 20_000;

/** Audio per client and the figures to compare with, per model. */
const PLAN: Record<SttModelKind, { recordings: number; seconds: number; loopUtterances: number; target: number; reference: string }> = {
  // Utterances stay <= 60 s: past ~60 s without a pause libvosk's endpointer splits a tone in two.
  tone: { recordings: 20, seconds: 60, loopUtterances: 20, target: 0.6, reference: '0.30-0.32' },
  // One recording per client: a worker saturated by fast producers keeps refusing new recordings after
  // they finish (see the README), which would put refusals, not decoding, into the window.
  bench: { recordings: 1, seconds: 60, loopUtterances: 4, target: 0.9, reference: '0.79-0.85' },
};

interface ServerRun {
  model: string;
  workers: number;
  clients: number;
  audioSeconds: number;
  serverCpuSeconds: number;
  wallSeconds: number;
  serverAudioPerCpuSecond: number;
  loopAudioPerCpuSecond: number;
  ratio: number;
  target: number;
  reference: string;
  recordings: number;
  /** message_start refused with STT_SERVICE_BUSY and asked again. */
  refusals: number;
  correct: number;
  failures: Record<string, number>;
  loadAverageBefore: number;
  loadAverageAfter: number;
}

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'tone,bench' },
    workers: { type: 'string', default: '2' },
    clients: { type: 'string', default: '8' },
    layers: { type: 'string' },
  },
});
const models = values.models.split(',').map((kind) => {
  if (kind !== 'tone' && kind !== 'bench') throw new Error(`--models: unknown model ${kind}`);
  return kind;
});
const workerCounts = values.workers.split(',').map(Number);
const clientCount = Number(values.clients);
const layers = values.layers === undefined ? undefined : Number(values.layers);

async function measureServer(model: SttModel, workers: number, loopAudioPerCpuSecond: number): Promise<ServerRun> {
  const plan = PLAN[model.kind];
  const server = await startSttServer({ modelDir: model.dir, workers });
  try {
    const clients = await Promise.all(
      Array.from({ length: clientCount }, async () => {
        const client = await SttBenchClient.connect(server.url);
        await client.startConversation();
        return client;
      }),
    );
    const loadAverageBefore = loadAverage1m();
    let refusals = 0;
    const cpu0 = server.cpuSeconds();
    const wall0 = performance.now();
    const results: RecordingResult[][] = await Promise.all(
      clients.map(async (client, index) => {
        const mine: RecordingResult[] = [];
        for (let r = 0; r < plan.recordings; r++) {
          const utterance = toneUtterance(model, plan.seconds, index * plan.recordings + r);
          for (;;) {
            const result = await client.record({
              pcm: utterance.pcm,
              expectedText: utterance.text,
              chunkMs: CHUNK_MS,
              pacing: { kind: 'ahead', aheadMs: AHEAD_MS },
              timeoutMs: 60_000,
            });
            // Saturated workers refuse new recordings (retryable): ask again, as a client would.
            if (result.outcome === 'busy' && performance.now() - wall0 < RETRY_FOR_MS) {
              refusals += 1;
              await new Promise((resolve) => setTimeout(resolve, RETRY_AFTER_MS));
              continue;
            }
            mine.push(result);
            break;
          }
        }
        return mine;
      }),
    );
    const serverCpuSeconds = server.cpuSeconds() - cpu0;
    const wallSeconds = (performance.now() - wall0) / 1000;
    const loadAverageAfter = loadAverage1m();
    for (const client of clients) client.close();
    const flat = results.flat();
    const audioSeconds = flat.reduce((sum, result) => sum + result.audioBytes, 0) / 32_000;
    const failures: Record<string, number> = {};
    for (const result of flat) {
      if (result.outcome === 'ok') continue;
      const key = result.errorCode === null ? result.outcome : `${result.outcome}:${result.errorCode}`;
      failures[key] = (failures[key] ?? 0) + 1;
    }
    const serverAudioPerCpuSecond = audioSeconds / serverCpuSeconds;
    return {
      model: model.label,
      workers,
      clients: clientCount,
      audioSeconds,
      serverCpuSeconds,
      wallSeconds,
      serverAudioPerCpuSecond,
      loopAudioPerCpuSecond,
      ratio: serverAudioPerCpuSecond / loopAudioPerCpuSecond,
      target: plan.target,
      reference: plan.reference,
      recordings: flat.length,
      refusals,
      correct: flat.filter((result) => result.outcome === 'ok').length,
      failures,
      loadAverageBefore,
      loadAverageAfter,
    };
  } finally {
    await server.stop();
  }
}

const runs: ServerRun[] = [];
for (const kind of models) {
  const model = await prepareSttModel({ kind, ...(kind === 'bench' && layers !== undefined ? { layers } : {}) }, progress);
  const plan = PLAN[kind];
  // The loop decodes the clients' first utterances: the same audio, just fewer of them.
  const loopAudio = Array.from({ length: plan.loopUtterances }, (_, index) => toneUtterance(model, plan.seconds, index));
  const loop = runTightLoop(
    model.dir,
    loopAudio.map((utterance) => utterance.pcm),
    CHUNK_MS,
  );
  const loopCorrect = loop.texts.every((text, index) => text === loopAudio[index]!.text);
  if (!loopCorrect) throw new Error(`libvosk tight loop on ${model.label}: a transcript is wrong`);
  progress(`${model.label}: libvosk tight loop ${loop.audioPerCpuSecond.toFixed(1)} audio-s per CPU-s (${loop.audioSeconds.toFixed(0)} s audio, load ${loadAverage1m()})`);
  for (const workers of workerCounts) {
    const run = await measureServer(model, workers, loop.audioPerCpuSecond);
    progress(`${model.label}, MAX_WORKERS=${workers}: ${run.serverAudioPerCpuSecond.toFixed(1)} audio-s per server CPU-s, ratio ${run.ratio.toFixed(2)}`);
    runs.push(run);
  }
}

const label = (run: ServerRun): string => `${run.model}, MAX_WORKERS=${run.workers}`;
const blas = Object.entries(blasEnvironment()).map(([key, value]) => `${key}=${value}`).join(' ') || 'no OPENBLAS_* set';
process.stdout.write(`\nDecode throughput through the server (${isoDate()} UTC, ${clientCount} clients, ${CHUNK_MS} ms frames, ${blas})\n\n`);
printTable(
  ['', ...runs.map(label)],
  [
    ['libvosk tight loop, 1 thread: audio-s per CPU-s', ...runs.map((run) => fixed(run.loopAudioPerCpuSecond))],
    ['voxgate: audio-s per server CPU-s', ...runs.map((run) => fixed(run.serverAudioPerCpuSecond))],
    ['ratio (voxgate / loop)', ...runs.map((run) => fixed(run.ratio, 2))],
    ['target', ...runs.map((run) => `>= ${run.target}`)],
    ['reference: vosk-server ratio', ...runs.map((run) => run.reference)],
    ['audio decoded (s) / wall (s)', ...runs.map((run) => `${fixed(run.audioSeconds, 0)} / ${fixed(run.wallSeconds)}`)],
    ['audio-s per wall-s', ...runs.map((run) => fixed(run.audioSeconds / run.wallSeconds))],
    ['correct transcripts', ...runs.map((run) => `${run.correct}/${run.recordings}`)],
    ['message_start refused (busy), retried after 50 ms', ...runs.map((run) => String(run.refusals))],
    ['load average (1 min) before / after', ...runs.map((run) => `${fixed(run.loadAverageBefore, 2)} / ${fixed(run.loadAverageAfter, 2)}`)],
  ],
);
process.stdout.write(`${JSON.stringify({ bench: 'stt-throughput', date: new Date().toISOString(), chunkMs: CHUNK_MS, blas: blasEnvironment(), runs })}\n`);
const hasWrong = runs.some((run) => run.correct !== run.recordings);
process.exitCode = hasWrong ? 1 : 0;
