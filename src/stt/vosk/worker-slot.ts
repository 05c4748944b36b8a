// One worker slot: the streams bound to one worker thread, their audio ring, and the batching between
// them. One decode task per slot carries every stream's pending work (and at most maxBatchesInFlight are
// running); such a task leaves at most every `minBatchIntervalMs`, because every task costs the main
// thread a message and a wake-up of the worker whatever it carries (with tiny models that was the main
// thread's largest cost). Finishing streams go first, in a task of their own: their callers wait for the
// final text, which should not wait for every other stream's audio (with many streams ending together
// that queueing was most of message_end's latency). Small client frames (20 ms) wait until a stream has
// `minPieceBytes` (~100 ms); big writes (the app's 1 s chunks) are cut into `maxPieceBytes` (~200 ms)
// pieces, so the worker can read the partial result between them (decoder.ts: at least every
// partialIntervalMs of audio, less often deep into a segment). A finishing stream sends everything it
// has, then the finish op.
//
// Reply-per-frame streams (vosk-server's protocol, src/asr/) do not wait for batches: each frame is
// answered as soon as the worker has decoded it, in the order frames arrived, as in vosk-server's pool.
// Their work goes in frame tasks, posted at once (at most FRAME_TASKS_IN_FLIGHT at a time, so one waits
// in the worker while another runs and the rest gather here): a frame task takes the due streams in the
// order they became due, one frame each (a stream with more goes to the back of the line), until it
// carries about FRAME_TASK_BUDGET_MS of the worker's time. With the batch's cadence every reply waited
// for the whole batch and for the interval (bench/README.md, "/asr frame tasks").
//
// Results come back in order; each one releases the ring bytes its task carried and its events go to
// the streams. The slot owns handles, the ring, in-flight tasks and load figures; streams own phases.
import { performance } from 'node:perf_hooks';
import { setImmediate } from 'node:timers';
import type { Logger } from 'pino';
import type { SttStreamOptions } from '../engine.js';
import { SttServiceError } from '../../errors.js';
import { assertNever, BatchOp, OP_WIDTH, type BatchOpCode, type DecodeResult, type RecognizerConfig, type StreamEvent } from '../../../workers/messages.js';
import type { AdmissionWorker } from './admission.js';
import type { AudioRing } from './audio-ring.js';
import { realClock, type Clock } from './clock.js';
import type { DecodeExecutor } from './executor.js';
import { LoadMeter } from './load-meter.js';
import { RESET_MARKER, VoskStream, workerLostError, type StreamHost, type StreamRate } from './stream.js';

/** Frame tasks one worker may have at once: one running, one queued in the worker. */
export const FRAME_TASKS_IN_FLIGHT = 2;
/** A frame task stops taking frames at about this much of the worker's time (ms, by the measured cost). */
const FRAME_TASK_BUDGET_MS = 10;
/**
 * Every op of a frame task counts at least this much (ms) against the budget: opens, resets and finishes
 * carry no audio, and with no measured cost yet frames would count nothing (at most 40 ops a task).
 */
const MIN_FRAME_OP_MS = 0.25;

export interface WorkerSlotOptions {
  index: number;
  ring: AudioRing;
  executor: DecodeExecutor;
  minPieceBytes: number;
  maxPieceBytes: number;
  maxBatchesInFlight: number;
  /** Least time between two tasks that only carry audio (ms). */
  minBatchIntervalMs: number;
  bytesPerMs: number;
  logger: Logger;
  /** A stream's handle became free (the engine waits for this when draining). */
  onHandleFreed(): void;
  /** A stream opened at `openedAt` (the clock's time) got its final text `latencyMs` after finish() was called. */
  onFinal(latencyMs: number, openedAt: number): void;
  /** Time base of the batch interval, lag and load figures. Default: performance.now() and real timers. */
  clock?: Clock;
  /** A batch's result arrived: the worker was busy decoding it for `busyMs` (its own measurement). */
  onDecoded?(busyMs: number): void;
}

export interface SlotStreamSnapshot {
  streamId: string;
  slot: number;
  handle: number;
  threadId: number | null;
  threadChanges: number;
  receivedBytes: number;
}

export class WorkerSlot implements StreamHost, AdmissionWorker {
  readonly index: number;
  readonly load: LoadMeter;
  /** Set when the slot's thread is serving; streams are only admitted then. */
  threadId: number | null = null;
  /** Sum of the costWeight of the streams holding a handle: the load admission predicts with. */
  admittedWeight = 0;
  readonly #ring: AudioRing;
  readonly #executor: DecodeExecutor;
  readonly #minPieceBytes: number;
  readonly #maxPieceBytes: number;
  readonly #maxBatchesInFlight: number;
  readonly #minBatchIntervalMs: number;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #onHandleFreed: () => void;
  readonly #onFinal: (latencyMs: number, openedAt: number) => void;
  readonly #onDecoded: ((busyMs: number) => void) | null;
  readonly #streams: (VoskStream | null)[];
  /** Per handle: 1 once the open op was sent / once the finish or abort op was sent. */
  readonly #isOpenSent: Uint8Array;
  readonly #isCloseSent: Uint8Array;
  /** Per handle: the clock's time its stream was opened (admission counts late finals by it). */
  readonly #openedAt: Float64Array;
  /** Per handle: 1 while the worker was told not to read the stream's partial texts (nobody listens). */
  readonly #isPartialsOff: Uint8Array;
  /** Stack of free handles. */
  readonly #freeHandles: Int32Array;
  #freeCount: number;
  #ops: Int32Array;
  /** Tasks (batches and frame tasks) one worker may have at once: the size of the in-flight arrays. */
  readonly #maxTasksInFlight: number;
  /** Ops of the tasks in flight, by seq % #maxTasksInFlight (results arrive in order). */
  readonly #inFlightOps: (Int32Array | null)[];
  readonly #inFlightPostedAt: Float64Array;
  /** Per in-flight task: 1 for a frame task. */
  readonly #inFlightIsFrameTask: Uint8Array;
  #inFlight = 0;
  #frameTasksInFlight = 0;
  /** Reply-per-frame streams with work due, oldest first: a ring of handles (each at most once). */
  readonly #frameQueue: Int32Array;
  readonly #isFrameQueued: Uint8Array;
  #frameQueueHead = 0;
  #frameQueueCount = 0;
  /**
   * Streams whose recogniser failed while later tasks in flight still carried their ops: their handles
   * are freed once those tasks came back (seq up to lastSeq), so a new stream never gets a handle that a
   * stale result would still release ring bytes of, or free.
   */
  #failedHandles: Array<{ handle: number; stream: VoskStream; lastSeq: number }> = [];
  #nextSeq = 0;
  #oldestSeq = 0;
  /** Bumped when the thread is lost: results of older batches are ignored. */
  #generation = 0;
  #isFlushScheduled = false;
  /** A stream is finishing: post the finishing streams' task first, without waiting for the interval. */
  #isUrgent = false;
  /** The last batch posted carried only finishing streams. */
  #wasClosingBatch = false;
  #lastPostedAt = Number.NEGATIVE_INFINITY;
  #isIntervalTimerSet = false;
  readonly #flushOnNextTurn = (): void => {
    this.#isFlushScheduled = false;
    this.flush();
  };
  readonly #flushAfterInterval = (): void => {
    this.#isIntervalTimerSet = false;
    this.flush();
  };

  constructor(options: WorkerSlotOptions) {
    this.index = options.index;
    this.#ring = options.ring;
    this.#executor = options.executor;
    this.#minPieceBytes = options.minPieceBytes;
    this.#maxPieceBytes = options.maxPieceBytes;
    this.#maxBatchesInFlight = options.maxBatchesInFlight;
    this.#minBatchIntervalMs = options.minBatchIntervalMs;
    this.#logger = options.logger;
    this.#clock = options.clock ?? realClock;
    this.#onHandleFreed = options.onHandleFreed;
    this.#onFinal = options.onFinal;
    this.#onDecoded = options.onDecoded ?? null;
    this.load = new LoadMeter({ windowMs: 1000, bytesPerMs: options.bytesPerMs }, this.#clock.now());
    const streams = options.ring.streams;
    this.#streams = new Array<VoskStream | null>(streams).fill(null);
    this.#isOpenSent = new Uint8Array(streams);
    this.#isCloseSent = new Uint8Array(streams);
    this.#isPartialsOff = new Uint8Array(streams);
    this.#openedAt = new Float64Array(streams);
    this.#freeHandles = new Int32Array(streams);
    for (let i = 0; i < streams; i++) this.#freeHandles[i] = streams - 1 - i;
    this.#freeCount = streams;
    this.#ops = new Int32Array(OP_WIDTH * streams * 3);
    this.#maxTasksInFlight = options.maxBatchesInFlight + FRAME_TASKS_IN_FLIGHT;
    this.#inFlightOps = new Array<Int32Array | null>(this.#maxTasksInFlight).fill(null);
    this.#inFlightPostedAt = new Float64Array(this.#maxTasksInFlight);
    this.#inFlightIsFrameTask = new Uint8Array(this.#maxTasksInFlight);
    this.#frameQueue = new Int32Array(streams);
    this.#isFrameQueued = new Uint8Array(streams);
  }

  /** Streams holding a handle (including ones whose recogniser is still being freed). */
  get usedHandles(): number {
    return this.#streams.length - this.#freeCount;
  }

  /** Worker seconds per second of default-rate audio, as admission predicts with (load-meter.ts). */
  get costPerAudioSecond(): number {
    return this.load.costPerAudioSecond;
  }

  /** False while the cost is still the start-up seed. */
  get isCostMeasured(): boolean {
    return this.load.isCostMeasured;
  }

  get freeHandles(): number {
    return this.#freeCount;
  }

  /** Tasks (batches and frame tasks) posted and not answered yet. */
  get batchesInFlight(): number {
    return this.#inFlight;
  }

  /** Age of the oldest task still running (ms): how far behind the worker is. */
  lagMs(now: number): number {
    return this.#inFlight === 0 ? 0 : now - this.#inFlightPostedAt[this.#oldestSeq % this.#maxTasksInFlight]!;
  }

  /** Creates a stream on a free handle. The caller checked admission (freeHandles > 0, thread ready). */
  openStream(options: SttStreamOptions, rate: StreamRate, logger: Logger): VoskStream {
    if (this.#freeCount === 0 || this.threadId === null) {
      throw new SttServiceError(`vosk slot ${this.index} cannot take a stream now`);
    }
    const handle = this.#freeHandles[--this.#freeCount]!;
    this.#ring.reset(handle);
    this.#isOpenSent[handle] = 0;
    this.#isCloseSent[handle] = 0;
    this.#isPartialsOff[handle] = 0;
    this.#openedAt[handle] = this.#clock.now();
    const stream = new VoskStream(this, this.index, handle, options, rate, logger);
    this.#streams[handle] = stream;
    this.admittedWeight += rate.costWeight;
    if (stream.isReplyPerFrame) this.frameDue(handle);
    else this.schedule();
    return stream;
  }

  freeBytes(handle: number): number {
    return this.#ring.freeBytes(handle);
  }

  writeAudio(handle: number, pcm: Uint8Array): boolean {
    if (!this.#ring.write(handle, pcm)) return false;
    // A reply-per-frame stream's audio leaves when its frame ends (frameDue), not by size.
    if (this.#ring.undispatchedBytes(handle) >= this.#minPieceBytes && this.#streams[handle]?.isReplyPerFrame !== true) this.schedule();
    return true;
  }

  schedule(): void {
    if (this.#isFlushScheduled) return;
    this.#isFlushScheduled = true;
    setImmediate(this.#flushOnNextTurn);
  }

  scheduleNow(): void {
    this.#isUrgent = true;
    this.schedule();
  }

  frameDue(handle: number): void {
    if (this.#isFrameQueued[handle] === 0) this.#enqueueFrameDue(handle);
    this.schedule();
  }

  /**
   * Posts frame tasks while reply-per-frame streams have work due and fewer than FRAME_TASKS_IN_FLIGHT
   * are running. Then batches: the finishing streams' batch if any is waiting, else one batch with every
   * stream's due work unless the last one left less than minBatchIntervalMs ago (then a timer retries);
   * no batch while the worker already has maxBatchesInFlight.
   */
  flush(): void {
    if (this.threadId === null) return;
    while (this.#frameQueueCount > 0 && this.#frameTasksInFlight < FRAME_TASKS_IN_FLIGHT) this.#postFrameTask();
    if (this.#inFlight - this.#frameTasksInFlight >= this.#maxBatchesInFlight) return;
    const now = this.#clock.now();
    const wait = this.#lastPostedAt + this.#minBatchIntervalMs - now;
    // Finishing streams go first, but not twice in a row while the others' audio is due: recordings
    // ending one after another must not starve the ones still talking (their buffers would overflow).
    // The full batch carries the finishing streams too.
    if (this.#isUrgent && !(this.#wasClosingBatch && wait <= 0)) {
      this.#isUrgent = false;
      if (this.#postBatch(true)) {
        this.#wasClosingBatch = true;
        return;
      }
    }
    if (wait > 0) {
      if (!this.#isIntervalTimerSet) {
        this.#isIntervalTimerSet = true;
        this.#clock.setTimeout(this.#flushAfterInterval, Math.ceil(wait));
      }
      return;
    }
    this.#isUrgent = false;
    this.#wasClosingBatch = false;
    if (this.#postBatch(false)) this.#lastPostedAt = now;
  }

  /** Builds and posts one batch (only the finishing and aborting streams' work, or all due work); false if there was none. */
  #postBatch(onlyClosing: boolean): boolean {
    let count = 0;
    const recognizers: RecognizerConfig[] = [];
    for (let handle = 0; handle < this.#streams.length; handle++) {
      const stream = this.#streams[handle];
      // Reply-per-frame streams go in frame tasks only.
      if (stream === null || stream === undefined || this.#isCloseSent[handle] === 1 || stream.isReplyPerFrame) continue;
      const phase = stream.phase;
      if (onlyClosing && phase === 'open') continue;
      const opened = this.#pushOpen(count, handle, stream, recognizers);
      if (opened === null) continue;
      count = opened;
      if (phase === 'aborting') {
        count = this.#pushOp(count, BatchOp.abort, handle, 0, 0);
        this.#isCloseSent[handle] = 1;
      } else if (phase === 'finishing') {
        count = this.#pushPartialsSwitch(count, handle, stream);
        count = this.#pushPieces(count, handle);
        count = this.#pushOp(count, BatchOp.finish, handle, 0, 0);
        this.#isCloseSent[handle] = 1;
      } else if (phase === 'open' && this.#ring.undispatchedBytes(handle) >= this.#minPieceBytes) {
        count = this.#pushPartialsSwitch(count, handle, stream);
        count = this.#pushPieces(count, handle);
      }
    }
    if (count === 0) return false;
    this.#post(this.#ops.slice(0, count), recognizers, false);
    return true;
  }

  /**
   * Builds and posts one frame task: the due reply-per-frame streams in the order they became due, one
   * frame (or reset) each, a stream with more going to the back of the line, until the task carries
   * about FRAME_TASK_BUDGET_MS of the worker's time; a stream's finish after its last frame.
   */
  #postFrameTask(): void {
    const cost = this.load.costPerAudioSecond;
    let count = 0;
    let predictedMs = 0;
    const recognizers: RecognizerConfig[] = [];
    while (this.#frameQueueCount > 0 && predictedMs < FRAME_TASK_BUDGET_MS) {
      const handle = this.#dequeueFrameDue();
      const stream = this.#streams[handle];
      // A handle freed while queued may hold a conversation stream now: its work goes in batches.
      if (stream === null || stream === undefined || !stream.isReplyPerFrame || this.#isCloseSent[handle] === 1) continue;
      const phase = stream.phase;
      if (phase === 'closed' && this.#isOpenSent[handle] === 1) continue; // failed in the worker: nothing to send
      const opened = this.#pushOpen(count, handle, stream, recognizers);
      if (opened === null) continue;
      if (opened !== count) predictedMs += MIN_FRAME_OP_MS;
      count = opened;
      if (phase === 'aborting') {
        count = this.#pushOp(count, BatchOp.abort, handle, 0, 0);
        this.#isCloseSent[handle] = 1;
        continue;
      }
      if (stream.peekMarker() !== null) {
        const dispatchedBefore = stream.dispatchedBytes;
        count = this.#pushFrame(count, handle, stream);
        // Bytes at the stream's rate -> seconds of default-rate audio -> the worker's seconds -> ms.
        const frameMs = ((stream.dispatchedBytes - dispatchedBefore) / (2 * stream.sampleRate)) * stream.costWeight * cost * 1000;
        predictedMs += Math.max(MIN_FRAME_OP_MS, frameMs);
      }
      if (stream.peekMarker() !== null) {
        this.#enqueueFrameDue(handle);
      } else if (phase === 'finishing') {
        count = this.#pushOp(count, BatchOp.finish, handle, 0, 0);
        this.#isCloseSent[handle] = 1;
        predictedMs += MIN_FRAME_OP_MS;
      }
    }
    if (count > 0) this.#post(this.#ops.slice(0, count), recognizers, true);
  }

  /**
   * The stream's open op (its recogniser's set-up, if any, into `recognizers`) unless the worker has it
   * already; a stream dropped before the worker ever saw it is released instead: then null.
   */
  #pushOpen(count: number, handle: number, stream: VoskStream, recognizers: RecognizerConfig[]): number | null {
    if (this.#isOpenSent[handle] === 1) return count;
    if (stream.phase === 'aborting' || stream.phase === 'closed') {
      stream.released();
      this.#freeHandle(handle);
      return null;
    }
    this.#isOpenSent[handle] = 1;
    const config = recognizerConfig(handle, stream);
    if (config !== null) recognizers.push(config);
    return this.#pushOp(count, BatchOp.open, handle, stream.sampleRate, stream.upsampleFactor);
  }

  /**
   * A reply-per-frame stream's oldest undispatched frame: its audio then a REPLY op (the worker decodes
   * the frame in one piece and answers it); or a RESET op when a reset came next.
   */
  #pushFrame(count: number, handle: number, stream: VoskStream): number {
    const marker = stream.peekMarker();
    if (marker === null) return count;
    if (marker === RESET_MARKER) {
      count = this.#pushOp(count, BatchOp.reset, handle, 0, 0);
    } else {
      // Whole samples only: an odd trailing byte goes with the next frame.
      let remaining = marker - (marker % 2) - stream.dispatchedBytes;
      for (let length = remaining > 0 ? this.#ring.takePiece(handle, remaining) : 0; length > 0; length = remaining > 0 ? this.#ring.takePiece(handle, remaining) : 0) {
        count = this.#pushOp(count, BatchOp.audio, handle, this.#ring.pieceOffset, length);
        stream.dispatchedBytes += length;
        remaining -= length;
      }
      count = this.#pushOp(count, BatchOp.reply, handle, 0, 0);
    }
    stream.takeMarker();
    return count;
  }

  #enqueueFrameDue(handle: number): void {
    this.#frameQueue[(this.#frameQueueHead + this.#frameQueueCount) % this.#frameQueue.length] = handle;
    this.#frameQueueCount += 1;
    this.#isFrameQueued[handle] = 1;
  }

  #dequeueFrameDue(): number {
    const handle = this.#frameQueue[this.#frameQueueHead]!;
    this.#frameQueueHead = (this.#frameQueueHead + 1) % this.#frameQueue.length;
    this.#frameQueueCount -= 1;
    this.#isFrameQueued[handle] = 0;
    return handle;
  }

  /** The slot's thread is serving (again). */
  ready(threadId: number): void {
    this.threadId = threadId;
    this.schedule();
  }

  /**
   * The slot's thread is gone with every recogniser on it: fail exactly this slot's streams and start
   * over empty. Results of batches posted before are ignored.
   */
  lost(cause: Error): void {
    this.threadId = null;
    this.#generation += 1;
    this.#inFlight = 0;
    this.#frameTasksInFlight = 0;
    this.#oldestSeq = this.#nextSeq;
    this.#inFlightOps.fill(null);
    this.#frameQueueCount = 0;
    this.#isFrameQueued.fill(0);
    this.#failedHandles = [];
    this.load.reset(this.#clock.now());
    const err = workerLostError(cause);
    for (let handle = 0; handle < this.#streams.length; handle++) {
      const stream = this.#streams[handle];
      if (stream === null || stream === undefined) continue;
      this.#freeHandle(handle);
      stream.fail(err, { isRecogniserGone: true });
    }
  }

  /** Aborts every stream (engine destroy). */
  abortAll(): void {
    for (const stream of this.#streams) stream?.abort();
  }

  snapshot(into: SlotStreamSnapshot[]): void {
    for (const stream of this.#streams) {
      if (stream === null || stream === undefined) continue;
      into.push({
        streamId: stream.streamId,
        slot: this.index,
        handle: stream.handle,
        threadId: stream.threadId,
        threadChanges: stream.threadChanges,
        receivedBytes: stream.receivedBytes,
      });
    }
  }

  /**
   * All of the stream's pending audio, cut into pieces of at most maxPieceBytes: the worker may read the
   * partial result after each piece, so a 1 s chunk early in a segment still yields its partials word by
   * word, and no audio waits for a later batch.
   */
  #pushPieces(count: number, handle: number): number {
    for (let length = this.#ring.takePiece(handle, this.#maxPieceBytes); length > 0; length = this.#ring.takePiece(handle, this.#maxPieceBytes)) {
      count = this.#pushOp(count, BatchOp.audio, handle, this.#ring.pieceOffset, length);
    }
    return count;
  }

  /** Tells the worker to stop (or resume) reading the stream's partial texts when that changed, before its audio. */
  #pushPartialsSwitch(count: number, handle: number, stream: VoskStream): number {
    const off = stream.wantsPartials() ? 0 : 1;
    if (off === this.#isPartialsOff[handle]) return count;
    this.#isPartialsOff[handle] = off;
    return this.#pushOp(count, BatchOp.partials, handle, 1 - off, 0);
  }

  #pushOp(count: number, code: BatchOpCode, handle: number, offset: number, length: number): number {
    if (count + OP_WIDTH > this.#ops.length) {
      const grown = new Int32Array(this.#ops.length * 2);
      grown.set(this.#ops);
      this.#ops = grown;
    }
    this.#ops[count] = code;
    this.#ops[count + 1] = handle;
    this.#ops[count + 2] = offset;
    this.#ops[count + 3] = length;
    return count + OP_WIDTH;
  }

  #post(ops: Int32Array, recognizers: RecognizerConfig[], isFrameTask: boolean): void {
    const seq = this.#nextSeq++;
    const generation = this.#generation;
    const index = seq % this.#maxTasksInFlight;
    this.#inFlightOps[index] = ops;
    this.#inFlightPostedAt[index] = this.#clock.now();
    this.#inFlightIsFrameTask[index] = isFrameTask ? 1 : 0;
    this.#inFlight += 1;
    if (isFrameTask) this.#frameTasksInFlight += 1;
    this.#executor.run(recognizers.length === 0 ? { type: 'decode', slot: this.index, seq, ops } : { type: 'decode', slot: this.index, seq, ops, recognizers }).then(
      (result) => this.#onResult(generation, result),
      (err: unknown) => this.#onBatchFailed(generation, err),
    );
  }

  #onResult(generation: number, result: DecodeResult): void {
    if (generation !== this.#generation) return;
    const index = result.seq % this.#maxTasksInFlight;
    const ops = this.#inFlightOps[index];
    this.#inFlightOps[index] = null;
    this.#inFlight -= 1;
    if (this.#inFlightIsFrameTask[index] === 1) this.#frameTasksInFlight -= 1;
    this.#oldestSeq = result.seq + 1;
    this.load.record(result, this.#clock.now());
    this.#onDecoded?.(result.busyMs);
    if (ops !== null && ops !== undefined) {
      // Release first: an event below may free a handle for reuse.
      for (let i = 0; i < ops.length; i += OP_WIDTH) {
        if (ops[i] !== BatchOp.audio) continue;
        const handle = ops[i + 1]!;
        this.#ring.release(handle, ops[i + 3]!);
        const stream = this.#streams[handle];
        if (stream === null || stream === undefined) continue;
        stream.noteThread(result.threadId);
        stream.roomChanged(this.#ring.freeBytes(handle));
      }
    }
    for (const event of result.events) this.#applyEvent(event, result.threadId);
    if (this.#failedHandles.length > 0) this.#freeFailedHandles(result.seq);
    this.flush();
  }

  /** Frees the handles of failed streams whose last task in flight (seq up to `seq`) came back. */
  #freeFailedHandles(seq: number): void {
    const waiting = [];
    for (const failed of this.#failedHandles) {
      if (failed.lastSeq > seq) waiting.push(failed);
      // Unless a released or final event of a task in between freed it already (and it was reused).
      else if (this.#streams[failed.handle] === failed.stream) this.#freeHandle(failed.handle);
    }
    this.#failedHandles = waiting;
  }

  #applyEvent(event: StreamEvent, threadId: number): void {
    const stream = this.#streams[event.handle];
    if (stream === null || stream === undefined) return;
    stream.noteThread(threadId);
    switch (event.type) {
      case 'partial':
        stream.deliverPartial(event.text);
        break;
      case 'segment':
        stream.deliverSegment(event.text);
        break;
      case 'reply':
        stream.deliverReply(event.json);
        break;
      case 'final':
        // finishRequestedAt is stream.ts's performance.now() time: the latency is real time, whatever the clock.
        this.#onFinal(performance.now() - stream.finishRequestedAt, this.#openedAt[event.handle]!);
        this.#freeHandle(event.handle);
        stream.deliverFinal(event.text);
        break;
      case 'released':
        this.#freeHandle(event.handle);
        stream.released();
        break;
      case 'error':
        // Tasks posted after this one may still carry the handle's ops (frame tasks): keep it until they
        // came back, so their results cannot release or free a new stream's handle.
        if (this.#inFlight === 0) this.#freeHandle(event.handle);
        else this.#failedHandles.push({ handle: event.handle, stream, lastSeq: this.#nextSeq - 1 });
        stream.fail(new SttServiceError(`speech recognition failed: ${event.message}`), { isRecogniserGone: true });
        break;
      default:
        assertNever(event);
    }
  }

  #onBatchFailed(generation: number, err: unknown): void {
    if (generation !== this.#generation) return; // the slot was already reported lost
    this.#logger.error({ err, slot: this.index }, 'vosk decode batch failed; replacing the worker');
    const cause = err instanceof Error ? err : new Error(String(err));
    // Recognisers on that thread are in an unknown state: stop it. The pool replaces the thread and
    // reports the slot lost; an executor without threads (in-process) cannot, so fail the slot here.
    const threadId = this.threadId;
    this.#executor.terminateSlot(this.index).then(
      () => {
        if (generation !== this.#generation) return;
        if (this.#executor.mode === 'in-process') {
          this.lost(cause);
          this.ready(0);
        } else if (this.threadId === threadId) {
          this.lost(cause);
        }
      },
      (terminateErr: unknown) => this.#logger.error({ err: terminateErr, slot: this.index }, 'could not stop a vosk worker'),
    );
  }

  #freeHandle(handle: number): void {
    const stream = this.#streams[handle];
    if (stream === null || stream === undefined) return;
    this.#streams[handle] = null;
    // Back to exactly 0 when empty, so rounding never accumulates.
    this.admittedWeight = this.#freeCount + 1 === this.#streams.length ? 0 : this.admittedWeight - stream.costWeight;
    this.#ring.reset(handle);
    this.#freeHandles[this.#freeCount++] = handle;
    this.#onHandleFreed();
  }
}

/** The recogniser set-up a stream's OPEN op needs beyond its rate, or null for a plain recogniser. */
function recognizerConfig(handle: number, stream: VoskStream): RecognizerConfig | null {
  const options = stream.replyPerFrame;
  if (options === undefined) return null;
  return {
    handle,
    words: options.words,
    partialWords: options.partialWords,
    maxAlternatives: options.maxAlternatives,
    grammarJson: options.phraseList === null ? null : JSON.stringify(options.phraseList),
    speakerModelAddress: options.speakerModelAddress,
    isReplyPerFrame: true,
  };
}
