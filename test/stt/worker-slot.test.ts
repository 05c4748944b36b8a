// WorkerSlot's batching, against a scripted executor (no libvosk): how often tasks leave and what a
// finishing stream's task carries.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import t from 'tap';
import { BatchOp, OP_WIDTH, type DecodeResult, type DecodeTask, type StreamEvent } from '../../workers/messages.js';
import { AudioRing } from '../../src/stt/vosk/audio-ring.js';
import type { DecodeExecutor } from '../../src/stt/vosk/executor.js';
import { WorkerSlot } from '../../src/stt/vosk/worker-slot.js';

const BYTES_PER_MS = 32;
const HUNDRED_MS = 100 * BYTES_PER_MS;

interface PostedTask {
  at: number;
  ops: number[][];
}

/** Runs each task after `decodeMs`, answers a finish op with the final text "done". */
class ScriptedExecutor implements DecodeExecutor {
  readonly mode = 'workers';
  readonly slots = 1;
  readonly posted: PostedTask[] = [];
  readonly #decodeMs: number;

  constructor(decodeMs: number) {
    this.#decodeMs = decodeMs;
  }

  async run(task: DecodeTask): Promise<DecodeResult> {
    const ops: number[][] = [];
    for (let i = 0; i < task.ops.length; i += OP_WIDTH) ops.push(Array.from(task.ops.subarray(i, i + OP_WIDTH)));
    this.posted.push({ at: performance.now(), ops });
    await sleep(this.#decodeMs);
    const events: StreamEvent[] = ops.filter(([code]) => code === BatchOp.finish).map(([, handle]) => ({ type: 'final', handle: handle!, text: 'done' }));
    const audioBytes = ops.filter(([code]) => code === BatchOp.audio).reduce((sum, op) => sum + op[3]!, 0);
    return { type: 'decoded', slot: task.slot, seq: task.seq, threadId: 1, busyMs: this.#decodeMs, steadyBusyMs: this.#decodeMs, steadyAudioBytes: audioBytes, events };
  }

  threadIdOf(): number | null {
    return 1;
  }

  async terminateSlot(): Promise<void> {}

  async destroy(): Promise<void> {}
}

function startSlot(executor: ScriptedExecutor, minBatchIntervalMs: number): WorkerSlot {
  const slot = new WorkerSlot({
    index: 0,
    ring: new AudioRing({ streams: 8, regionBytes: 40 * HUNDRED_MS }),
    executor,
    minPieceBytes: HUNDRED_MS,
    maxPieceBytes: 2 * HUNDRED_MS,
    maxBatchesInFlight: 1,
    minBatchIntervalMs,
    bytesPerMs: BYTES_PER_MS,
    logger: pino({ level: 'silent' }),
    onHandleFreed: () => {},
    onFinal: () => {},
  });
  slot.ready(1);
  return slot;
}

const streamOptions = (streamId: string) => ({ streamId, onPartial: () => {}, onSegment: () => {}, onError: () => {} });
const logger = pino({ level: 'silent' });
const DEFAULT_RATE = { sampleRate: 16000, upsampleFactor: 1, costWeight: 1 };

t.test('tasks that only carry audio leave at most every minBatchIntervalMs', async (t) => {
  const executor = new ScriptedExecutor(1);
  const slot = startSlot(executor, 40);
  const streams = [0, 1, 2].map((i) => slot.openStream(streamOptions(`s${i}`), DEFAULT_RATE, logger));
  // Every 5 ms one stream gets 100 ms of audio: without the interval nearly every write would post a task.
  for (let i = 0; i < 60; i++) {
    streams[i % 3]!.write(new Uint8Array(HUNDRED_MS));
    await sleep(5);
  }
  await sleep(60);
  const gaps = executor.posted.slice(1).map((task, i) => task.at - executor.posted[i]!.at);
  t.ok(executor.posted.length >= 3, `tasks were posted (${executor.posted.length})`);
  t.ok(executor.posted.length <= 12, `far fewer tasks than writes (${executor.posted.length} for 60 writes)`);
  t.ok(Math.min(...gaps) >= 39, `no two audio tasks closer than the interval (least gap ${Math.min(...gaps).toFixed(1)} ms)`);
  const sent = executor.posted.flatMap((task) => task.ops).filter(([code]) => code === BatchOp.audio).reduce((sum, op) => sum + op[3]!, 0);
  t.equal(sent, 60 * HUNDRED_MS, 'every byte was sent');
  for (const stream of streams) stream.abort();
});

t.test('a finishing stream gets a task of its own at once, ahead of the others audio', async (t) => {
  const executor = new ScriptedExecutor(1);
  const slot = startSlot(executor, 1000);
  const talking = slot.openStream(streamOptions('talking'), DEFAULT_RATE, logger);
  const ending = slot.openStream(streamOptions('ending'), DEFAULT_RATE, logger);
  // The first task (both opens and their audio) starts the 1 s interval.
  talking.write(new Uint8Array(HUNDRED_MS));
  ending.write(new Uint8Array(HUNDRED_MS));
  await sleep(20);
  t.equal(executor.posted.length, 1);
  talking.write(new Uint8Array(3 * HUNDRED_MS));
  ending.write(new Uint8Array(HUNDRED_MS / 2));
  const started = performance.now();
  const text = await ending.finish();
  t.equal(text, 'done');
  t.ok(performance.now() - started < 500, 'finish() did not wait for the batch interval');
  const finishTask = executor.posted[1]!;
  t.same(
    finishTask.ops.map(([code, handle, , length]) => [code, handle, length]),
    [
      [BatchOp.audio, 1, HUNDRED_MS / 2],
      [BatchOp.finish, 1, 0],
    ],
    'only the ending stream: its last audio, then finish',
  );
  t.equal(executor.posted.length, 2, "the other stream's audio waits for the interval");
  talking.abort();
});

t.test('recordings ending one after another do not starve the ones still talking', async (t) => {
  // Each task takes 30 ms; audio may leave every 10 ms.
  const executor = new ScriptedExecutor(30);
  const slot = startSlot(executor, 10);
  const talking = slot.openStream(streamOptions('talking'), DEFAULT_RATE, logger);
  const ending = [0, 1, 2, 3, 4].map((i) => slot.openStream(streamOptions(`ending-${i}`), DEFAULT_RATE, logger));
  await sleep(50);
  talking.write(new Uint8Array(HUNDRED_MS));
  // A recording ends while every task is running, so a finishing stream is always waiting.
  const finals: Promise<string>[] = [];
  for (const stream of ending) {
    finals.push(stream.finish());
    await sleep(25);
  }
  await Promise.all(finals);
  const talkingAudio = executor.posted.findIndex((task) => task.ops.some(([code, handle]) => code === BatchOp.audio && handle === 0));
  const lastFinish = executor.posted.findLastIndex((task) => task.ops.some(([code]) => code === BatchOp.finish));
  t.ok(talkingAudio !== -1 && talkingAudio < lastFinish, `the talking stream's audio left between the finishing tasks (task ${talkingAudio} of ${executor.posted.length})`);
  talking.abort();
});
