// WorkerSlot's batching, against a scripted executor (no libvosk) on a fake clock the test advances: how
// often tasks leave and what a finishing stream's task carries, in exact milliseconds of that clock.
import pino from 'pino';
import t from 'tap';
import { BatchOp, OP_WIDTH, type DecodeResult, type DecodeTask, type StreamEvent } from '../../workers/messages.js';
import { AudioRing } from '../../src/stt/vosk/audio-ring.js';
import type { DecodeExecutor } from '../../src/stt/vosk/executor.js';
import { WorkerSlot } from '../../src/stt/vosk/worker-slot.js';
import { FakeClock, settle } from '../kit/fake-clock.js';

const BYTES_PER_MS = 32;
const HUNDRED_MS = 100 * BYTES_PER_MS;

interface PostedTask {
  at: number;
  ops: number[][];
}

/**
 * Runs each task for `decodeMs` of the fake clock, one after another, answers a finish op with the final text "done" and
 * each reply op with a numbered reply.
 */
class ScriptedExecutor implements DecodeExecutor {
  readonly mode = 'workers';
  readonly slots = 1;
  readonly posted: PostedTask[] = [];
  /** Replies answered so far (reply ops get numbered texts). */
  replies = 0;
  /** Handles whose next reply op fails (an error event, as when libvosk rejects a frame). */
  readonly failOnReply = new Set<number>();
  readonly #clock: FakeClock;
  readonly #decodeMs: number;
  #busyUntil = 0;

  constructor(clock: FakeClock, decodeMs: number) {
    this.#clock = clock;
    this.#decodeMs = decodeMs;
  }

  run(task: DecodeTask): Promise<DecodeResult> {
    const ops: number[][] = [];
    for (let i = 0; i < task.ops.length; i += OP_WIDTH) ops.push(Array.from(task.ops.subarray(i, i + OP_WIDTH)));
    this.posted.push({ at: this.#clock.now(), ops });
    const events: StreamEvent[] = [];
    for (const [code, handle] of ops) {
      if (code === BatchOp.reply && this.failOnReply.delete(handle!)) events.push({ type: 'error', handle: handle!, message: 'scripted failure' });
      else if (code === BatchOp.reply) events.push({ type: 'reply', handle: handle!, json: `{"partial" : "reply ${++this.replies}"}` });
      if (code === BatchOp.finish) events.push({ type: 'final', handle: handle!, text: 'done' });
    }
    const audioBytes = ops.filter(([code]) => code === BatchOp.audio).reduce((sum, op) => sum + op[3]!, 0);
    const result: DecodeResult = { type: 'decoded', slot: task.slot, seq: task.seq, threadId: 1, busyMs: this.#decodeMs, steadyBusyMs: this.#decodeMs, steadyAudioBytes: audioBytes, finalBusyMs: 0, finalAudioBytes: 0, events };
    // One thread: a task starts when the one before it is done.
    const startsAt = Math.max(this.#clock.now(), this.#busyUntil);
    this.#busyUntil = startsAt + this.#decodeMs;
    return new Promise((resolve) => this.#clock.setTimeout(() => resolve(result), this.#busyUntil - this.#clock.now()));
  }

  threadIdOf(): number | null {
    return 1;
  }

  async terminateSlot(): Promise<void> {}

  async destroy(): Promise<void> {}
}

function startSlot(executor: ScriptedExecutor, clock: FakeClock, minBatchIntervalMs: number): WorkerSlot {
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
    clock,
  });
  slot.ready(1);
  return slot;
}

const streamOptions = (streamId: string) => ({ streamId, onPartial: () => {}, onSegment: () => {}, onError: () => {} });
const logger = pino({ level: 'silent' });
const DEFAULT_RATE = { sampleRate: 16000, upsampleFactor: 1, costWeight: 1 };
const audioBytesOf = (task: PostedTask): number => task.ops.filter(([code]) => code === BatchOp.audio).reduce((sum, op) => sum + op[3]!, 0);

t.test('tasks that only carry audio leave at most every minBatchIntervalMs', async (t) => {
  const clock = new FakeClock();
  const executor = new ScriptedExecutor(clock, 1);
  const slot = startSlot(executor, clock, 40);
  const streams = [0, 1, 2].map((i) => slot.openStream(streamOptions(`s${i}`), DEFAULT_RATE, logger));
  t.teardown(() => streams.forEach((stream) => stream.abort()));
  // Every 5 ms one stream gets 100 ms of audio: without the interval nearly every write would post a task.
  for (let i = 0; i < 60; i++) {
    streams[i % 3]!.write(new Uint8Array(HUNDRED_MS));
    await clock.advance(5);
  }
  await clock.advance(40);
  const times = executor.posted.map((task) => task.at);
  const gaps = times.slice(1).map((at, i) => at - times[i]!);
  t.ok(gaps.every((gap) => gap >= 40), `no two tasks closer than the interval (posted at ${times.join(', ')} ms)`);
  // Writes came all the time, so after the first task (the opens and the first write, at 0 ms) each one
  // left as soon as the interval allowed: at 40, 80, ..., 320 ms (the last write was at 295 ms).
  t.same(times, [0, 40, 80, 120, 160, 200, 240, 280, 320], 'each task left as soon as the interval allowed');
  t.equal(executor.posted.map(audioBytesOf).reduce((sum, bytes) => sum + bytes, 0), 60 * HUNDRED_MS, 'every byte was sent');
});

t.test('a finishing stream gets a task of its own at once, ahead of the others audio', async (t) => {
  const clock = new FakeClock();
  const executor = new ScriptedExecutor(clock, 1);
  const slot = startSlot(executor, clock, 1000);
  const talking = slot.openStream(streamOptions('talking'), DEFAULT_RATE, logger);
  t.teardown(() => talking.abort());
  const ending = slot.openStream(streamOptions('ending'), DEFAULT_RATE, logger);
  // The first task (both opens and their audio) starts the 1 s interval.
  talking.write(new Uint8Array(HUNDRED_MS));
  ending.write(new Uint8Array(HUNDRED_MS));
  await clock.advance(1);
  t.equal(executor.posted.length, 1);
  talking.write(new Uint8Array(3 * HUNDRED_MS));
  ending.write(new Uint8Array(HUNDRED_MS / 2));
  let text: string | null = null;
  const finished = ending.finish().then((finalText) => (text = finalText));
  // One decode (1 ms) later the final text is there: 999 ms before the interval would let a task go.
  await clock.advance(1);
  t.equal(text, 'done', 'finish() did not wait for the batch interval');
  await finished;
  t.equal(executor.posted[1]!.at, 1, 'the finishing task left when finish() was called');
  t.same(
    executor.posted[1]!.ops.map(([code, handle, , length]) => [code, handle, length]),
    [
      [BatchOp.audio, 1, HUNDRED_MS / 2],
      [BatchOp.finish, 1, 0],
    ],
    'only the ending stream: its last audio, then finish',
  );
  t.equal(executor.posted.length, 2, "the other stream's audio waits for the interval");
  await clock.advance(998);
  t.equal(executor.posted.length, 3, "the other stream's audio leaves when the interval is over");
  t.equal(executor.posted[2]!.at, 1000);
  t.equal(audioBytesOf(executor.posted[2]!), 3 * HUNDRED_MS);
});

t.test('recordings ending one after another do not starve the ones still talking', async (t) => {
  // Each task takes 30 ms; audio may leave every 10 ms.
  const clock = new FakeClock();
  const executor = new ScriptedExecutor(clock, 30);
  const slot = startSlot(executor, clock, 10);
  const talking = slot.openStream(streamOptions('talking'), DEFAULT_RATE, logger);
  t.teardown(() => talking.abort());
  const ending = [0, 1, 2, 3, 4].map((i) => slot.openStream(streamOptions(`ending-${i}`), DEFAULT_RATE, logger));
  await clock.advance(50);
  talking.write(new Uint8Array(HUNDRED_MS));
  // A recording ends while every task is running, so a finishing stream is always waiting.
  const finals: Promise<string>[] = [];
  for (const stream of ending) {
    finals.push(stream.finish());
    await clock.advance(25);
  }
  let isDone = false;
  const allFinished = Promise.all(finals).then(() => (isDone = true));
  while (!isDone) await clock.advance(30);
  await allFinished;
  const talkingAudio = executor.posted.findIndex((task) => task.ops.some(([code, handle]) => code === BatchOp.audio && handle === 0));
  const lastFinish = executor.posted.findLastIndex((task) => task.ops.some(([code]) => code === BatchOp.finish));
  t.ok(talkingAudio !== -1 && talkingAudio < lastFinish, `the talking stream's audio left between the finishing tasks (task ${talkingAudio} of ${executor.posted.length})`);
});

t.test('the fake clock runs a slot exactly like real time would: nothing is posted before its turn', async (t) => {
  // Guards the fixture: a write is batched on the next turn (setImmediate), not synchronously.
  const clock = new FakeClock();
  const executor = new ScriptedExecutor(clock, 1);
  const slot = startSlot(executor, clock, 40);
  const stream = slot.openStream(streamOptions('s'), DEFAULT_RATE, logger);
  t.teardown(() => stream.abort());
  stream.write(new Uint8Array(HUNDRED_MS));
  t.equal(executor.posted.length, 0, 'not within the write');
  await settle();
  t.equal(executor.posted.length, 1, 'on the next turn');
});

/** A reply-per-frame stream (vosk-server's protocol) that records its replies. */
function openReplyStream(slot: WorkerSlot, streamId: string, replies: string[]) {
  const options = {
    ...streamOptions(streamId),
    replyPerFrame: { words: false, partialWords: false, maxAlternatives: 0, phraseList: null, speakerModelAddress: null, onReply: (json: string) => replies.push(`${streamId} ${json}`) },
  };
  return slot.openStream(options, DEFAULT_RATE, logger);
}

function sendFrame(stream: ReturnType<typeof openReplyStream>, bytes = HUNDRED_MS): void {
  stream.write(new Uint8Array(bytes));
  stream.endFrame();
}

/** [code, handle, length] of a task's ops, without the open ops. */
const frameOps = (task: PostedTask): number[][] => task.ops.filter(([code]) => code !== BatchOp.open).map(([code, handle, , length]) => [code!, handle!, length!]);

t.test('a reply-per-frame frame is answered one decode after it came, whatever the batch interval', async (t) => {
  const clock = new FakeClock();
  const executor = new ScriptedExecutor(clock, 1);
  const slot = startSlot(executor, clock, 1000);
  const talking = slot.openStream(streamOptions('talking'), DEFAULT_RATE, logger);
  t.teardown(() => talking.abort());
  const replies: string[] = [];
  const asr = openReplyStream(slot, 'asr', replies);
  t.teardown(() => asr.abort());
  talking.write(new Uint8Array(HUNDRED_MS));
  await clock.advance(2); // the open, then the conversation stream's first batch: it starts the 1 s interval
  for (let frame = 1; frame <= 3; frame++) {
    talking.write(new Uint8Array(HUNDRED_MS));
    sendFrame(asr);
    await clock.advance(1);
    t.equal(replies.length, frame, `frame ${frame} answered 1 ms after it came`);
    await clock.advance(9);
  }
  const talkingTasks = executor.posted.filter((task) => task.ops.some(([code, handle]) => code === BatchOp.audio && handle === 0));
  t.equal(talkingTasks.length, 1, "the conversation stream's audio still waits for its interval");
});

t.test('frame tasks take the due streams in the order they came, one frame each, two tasks at a time', async (t) => {
  const clock = new FakeClock();
  // Each task runs 10 ms; at the seeded cost a 100 ms frame is 6 ms of the worker's time, so a frame task
  // stops after two frames (FRAME_TASK_BUDGET_MS = 10).
  const executor = new ScriptedExecutor(clock, 10);
  const slot = startSlot(executor, clock, 20);
  slot.load.seedCost(0.06);
  const replies: string[] = [];
  const [a, b, c] = ['a', 'b', 'c'].map((id) => openReplyStream(slot, id, replies)) as [ReturnType<typeof openReplyStream>, ReturnType<typeof openReplyStream>, ReturnType<typeof openReplyStream>];
  t.teardown(() => [a, b, c].forEach((stream) => stream.abort()));
  await clock.advance(10); // the opens
  const before = executor.posted.length;
  // In one turn: a sends three frames (a fire-and-forget client), then b and c one each.
  sendFrame(a);
  sendFrame(a);
  sendFrame(a);
  sendFrame(b);
  sendFrame(c);
  await settle();
  const posted = executor.posted.slice(before);
  t.equal(posted.length, 2, 'two frame tasks at once: one running, one waiting in the worker');
  t.same(
    posted.map(frameOps),
    [
      [[BatchOp.audio, 0, HUNDRED_MS], [BatchOp.reply, 0, 0], [BatchOp.audio, 1, HUNDRED_MS], [BatchOp.reply, 1, 0]],
      [[BatchOp.audio, 2, HUNDRED_MS], [BatchOp.reply, 2, 0], [BatchOp.audio, 0, HUNDRED_MS], [BatchOp.reply, 0, 0]],
    ],
    "a's first frame, b's, c's, then a's second: a stream with more goes to the back of the line",
  );
  await clock.advance(10);
  t.same(replies, ['a {"partial" : "reply 1"}', 'b {"partial" : "reply 2"}'], 'the first task answered on its own');
  t.same(frameOps(executor.posted.at(-1)!), [[BatchOp.audio, 0, HUNDRED_MS], [BatchOp.reply, 0, 0]], "a's third frame left when the first task came back");
  await clock.advance(20);
  t.equal(replies.length, 5, 'every frame answered once');
  t.same(replies.filter((reply) => reply.startsWith('a ')).length, 3);
  const finished = b.finish();
  await clock.advance(10);
  t.equal(await finished, 'done');
  t.same(frameOps(executor.posted.at(-1)!), [[BatchOp.finish, 1, 0]], 'a finish goes in a frame task too');
});

t.test('a recogniser that fails while its next frame is in flight keeps its handle until that task came back', async (t) => {
  const clock = new FakeClock();
  const executor = new ScriptedExecutor(clock, 10);
  const slot = startSlot(executor, clock, 20);
  const replies: string[] = [];
  const failing = openReplyStream(slot, 'failing', replies);
  await clock.advance(10); // its open
  executor.failOnReply.add(failing.handle);
  sendFrame(failing);
  await settle();
  sendFrame(failing);
  await settle();
  t.equal(slot.batchesInFlight, 2, 'both frames in flight, in two frame tasks');
  await clock.advance(10);
  t.equal(failing.phase, 'closed', 'the first frame failed the stream');
  const next = openReplyStream(slot, 'next', replies);
  t.teardown(() => next.abort());
  t.not(next.handle, failing.handle, 'the failed handle is not reused while a task still carries its ops');
  await clock.advance(10);
  const third = openReplyStream(slot, 'third', replies);
  t.teardown(() => third.abort());
  t.equal(third.handle, failing.handle, 'reused once that task came back');
  t.same(replies, [], 'no reply for the failed stream');
});
