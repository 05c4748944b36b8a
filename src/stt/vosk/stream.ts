// One recognition stream as the dialogue layer sees it (SttStream). write() copies the caller's bytes
// into the stream's region of its slot's SharedArrayBuffer ring at once (uWS reuses its buffer after the
// callback returns); the slot (worker-slot.ts) decides when pieces go to the worker and hands results
// back through the deliver*/fail methods below. The stream owns its phase and its callbacks.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { SttBusyError, SttServiceError, type VoxgateError } from '../../errors.js';
import type { ReplyPerFrameStream, SttStreamOptions } from '../engine.js';

/**
 * open       accepting audio
 * finishing  finish() called: remaining audio and the finish op are being decoded
 * aborting   abort() called or failed here: the worker must still free the recogniser
 * closed     nothing left in the worker for this stream
 */
export type StreamPhase = 'open' | 'finishing' | 'aborting' | 'closed';

/** How a stream's PCM reaches libvosk; fixed when the stream opens. */
export interface StreamRate {
  /** The stream's PCM sample rate (Hz). */
  sampleRate: number;
  /** 1, or the whole factor the decoder raises a rate below the model's by (upsampler.ts). */
  upsampleFactor: number;
  /**
   * Its decode cost relative to a stream at the engine's default rate: the ratio of bytes per second fed
   * to libvosk. Admission predicts load with it, so a 48 kHz stream counts three times a 16 kHz one.
   */
  costWeight: number;
}

/** What a stream needs from the slot that owns its handle. */
export interface StreamHost {
  /** Copies `pcm` into the ring; false when the stream's region is full. */
  writeAudio(handle: number, pcm: Uint8Array): boolean;
  /** Bytes the stream may write before its buffer is full. */
  freeBytes(handle: number): number;
  /** The stream's phase changed or it has audio worth sending: flush when the batch interval allows. */
  schedule(): void;
  /** The stream is finishing: flush on the next turn (its caller waits for the final text). */
  scheduleNow(): void;
  /**
   * A reply-per-frame stream has a frame, reset, finish or abort for the worker: it goes in the next
   * frame task, after the streams that were due before it (worker-slot.ts, "frame tasks").
   */
  frameDue(handle: number): void;
}

/** Most frames and resets a reply-per-frame stream may have unanswered (its caller waits below this). */
export const MAX_PENDING_REPLIES = 256;
/** A reply marker that stands for a reset, not for the end of a frame. */
export const RESET_MARKER = -1;

export class VoskStream implements ReplyPerFrameStream {
  readonly streamId: string;
  readonly slot: number;
  readonly handle: number;
  readonly sampleRate: number;
  readonly upsampleFactor: number;
  readonly costWeight: number;
  /** threadId of the thread that decoded this stream (null before the first result). */
  threadId: number | null = null;
  /** How many results came from a thread other than the first one (stays 0: streams are sticky). */
  threadChanges = 0;
  #receivedBytes = 0;
  #phase: StreamPhase = 'open';
  #error: VoxgateError | null = null;
  #finished: Promise<string> | null = null;
  #resolveFinish: ((text: string) => void) | null = null;
  #rejectFinish: ((err: VoxgateError) => void) | null = null;
  #writable: Promise<void> | null = null;
  #resolveWritable: (() => void) | null = null;
  #writableBytes = 0;
  /** performance.now() when finish() was called (0 before). */
  finishRequestedAt = 0;
  /**
   * Reply-per-frame streams: the stream byte position at which each unanswered-and-undispatched frame
   * ends, or RESET_MARKER, oldest first (a fixed ring: MAX_PENDING_REPLIES). The slot takes them.
   */
  readonly #markers: Float64Array | null;
  #markerHead = 0;
  #markerCount = 0;
  #pendingReplies = 0;
  /** Stream bytes the slot has dispatched to the worker (reply-per-frame streams). */
  dispatchedBytes = 0;
  readonly #host: StreamHost;
  readonly #options: SttStreamOptions;
  #hasWantsPartialsThrown = false;
  readonly #logger: Logger;

  constructor(host: StreamHost, slot: number, handle: number, options: SttStreamOptions, rate: StreamRate, logger: Logger) {
    this.#host = host;
    this.slot = slot;
    this.handle = handle;
    this.sampleRate = rate.sampleRate;
    this.upsampleFactor = rate.upsampleFactor;
    this.costWeight = rate.costWeight;
    this.streamId = options.streamId;
    this.#options = options;
    this.#logger = logger;
    this.#markers = options.replyPerFrame === undefined ? null : new Float64Array(MAX_PENDING_REPLIES);
  }

  get isReplyPerFrame(): boolean {
    return this.#markers !== null;
  }

  get pendingReplies(): number {
    return this.#pendingReplies;
  }

  get replyPerFrame(): SttStreamOptions['replyPerFrame'] {
    return this.#options.replyPerFrame;
  }

  freeBytes(): number {
    return this.#phase === 'open' ? this.#host.freeBytes(this.handle) : 0;
  }

  endFrame(): void {
    this.#pushMarker(this.#receivedBytes);
  }

  reset(): void {
    this.#pushMarker(RESET_MARKER);
  }

  #pushMarker(marker: number): void {
    const markers = this.#markers;
    if (markers === null) throw new TypeError('endFrame() and reset() need a stream opened with replyPerFrame');
    if (this.#phase !== 'open') return;
    if (this.#markerCount === markers.length) {
      this.fail(new SttBusyError(`more than ${MAX_PENDING_REPLIES} frames wait for their replies`), { isRecogniserGone: false });
      return;
    }
    markers[(this.#markerHead + this.#markerCount) % markers.length] = marker;
    this.#markerCount += 1;
    this.#pendingReplies += 1;
    // A lockstep client waits for this reply before it sends more: no waiting for a fuller piece.
    this.#host.frameDue(this.handle);
  }

  /** The oldest marker the slot has not dispatched yet, or null. */
  peekMarker(): number | null {
    if (this.#markers === null || this.#markerCount === 0) return null;
    return this.#markers[this.#markerHead]!;
  }

  takeMarker(): void {
    if (this.#markers === null || this.#markerCount === 0) return;
    this.#markerHead = (this.#markerHead + 1) % this.#markers.length;
    this.#markerCount -= 1;
  }

  get receivedBytes(): number {
    return this.#receivedBytes;
  }

  /** Does the stream's owner listen for partial texts now (SttStreamOptions.wantsPartials; default yes)? */
  wantsPartials(): boolean {
    const wants = this.#options.wantsPartials;
    if (wants === undefined) return true;
    try {
      return wants();
    } catch (err) {
      // Asked once per batch: log the first failure only.
      if (!this.#hasWantsPartialsThrown) this.#logger.error({ err, streamId: this.streamId }, 'stt wantsPartials callback threw; reading partials');
      this.#hasWantsPartialsThrown = true;
      return true;
    }
  }

  get phase(): StreamPhase {
    return this.#phase;
  }

  write(pcm: Uint8Array): void {
    if (this.#phase !== 'open' || pcm.byteLength === 0) return;
    // Copy now: uWS reuses this ArrayBuffer once the callback returns.
    if (!this.#host.writeAudio(this.handle, pcm)) {
      this.fail(new SttBusyError('speech recognition is too far behind: the stream audio buffer is full'), {
        isRecogniserGone: false,
      });
      return;
    }
    this.#receivedBytes += pcm.byteLength;
  }

  finish(): Promise<string> {
    if (this.#finished !== null) return this.#finished;
    if (this.#error !== null) {
      this.#finished = Promise.reject(this.#error);
      return this.#finished;
    }
    if (this.#phase !== 'open') {
      // Aborted before: nothing will be recognised.
      this.#finished = Promise.resolve('');
      return this.#finished;
    }
    this.#finished = new Promise<string>((resolve, reject) => {
      this.#resolveFinish = resolve;
      this.#rejectFinish = reject;
    });
    this.#phase = 'finishing';
    this.finishRequestedAt = performance.now();
    this.#wakeWriter();
    this.#wakeHost(true);
    return this.#finished;
  }

  abort(): void {
    if (this.#phase !== 'open' && this.#phase !== 'finishing') return;
    this.#phase = 'aborting';
    this.#wakeWriter();
    // A finish() still waiting gets the empty text: the caller dropped the stream.
    this.#settleFinish('', null);
    this.#wakeHost();
  }

  /**
   * Resolves once the stream's buffer has room for `bytes` more (backpressure for producers faster than
   * real time, e.g. file uploads), or at once if it has, or when the stream ends.
   */
  whenWritable(bytes: number): Promise<void> {
    if (this.#phase !== 'open' || this.#host.freeBytes(this.handle) >= bytes) return Promise.resolve();
    this.#writableBytes = bytes;
    this.#writable ??= new Promise<void>((resolve) => {
      this.#resolveWritable = resolve;
    });
    return this.#writable;
  }

  // --- called by the slot -----------------------------------------------------------------------

  noteThread(threadId: number): void {
    if (this.threadId === null) this.threadId = threadId;
    else if (this.threadId !== threadId) this.threadChanges += 1;
  }

  /** The worker consumed some of this stream's audio; `freeBytes` can be written now. */
  roomChanged(freeBytes: number): void {
    if (this.#resolveWritable !== null && freeBytes >= this.#writableBytes) this.#wakeWriter();
  }

  deliverPartial(text: string): void {
    if (this.#phase !== 'open' && this.#phase !== 'finishing') return;
    try {
      this.#options.onPartial(text);
    } catch (err) {
      this.#logger.error({ err, streamId: this.streamId }, 'stt onPartial callback threw');
    }
  }

  deliverReply(json: string): void {
    if (this.#phase !== 'open' && this.#phase !== 'finishing') return;
    if (this.#pendingReplies > 0) this.#pendingReplies -= 1;
    try {
      this.#options.replyPerFrame?.onReply(json);
    } catch (err) {
      this.#logger.error({ err, streamId: this.streamId }, 'stt onReply callback threw');
    }
  }

  deliverSegment(text: string): void {
    if (this.#phase !== 'open' && this.#phase !== 'finishing') return;
    try {
      this.#options.onSegment(text);
    } catch (err) {
      this.#logger.error({ err, streamId: this.streamId }, 'stt onSegment callback threw');
    }
  }

  deliverFinal(text: string): void {
    this.#phase = 'closed';
    this.#wakeWriter();
    this.#settleFinish(text, null);
  }

  /** The abort reached the worker: the recogniser is freed. */
  released(): void {
    this.#phase = 'closed';
    this.#wakeWriter();
  }

  /**
   * The stream is dead. `isRecogniserGone` tells whether the worker side is already gone (worker died,
   * recogniser failed) or still needs an abort op (failed here, e.g. buffer overrun).
   */
  fail(err: VoxgateError, options: { isRecogniserGone: boolean }): void {
    if (this.#phase === 'closed' || this.#error !== null) {
      if (options.isRecogniserGone) this.#phase = 'closed';
      return;
    }
    const wasAborted = this.#phase === 'aborting';
    this.#phase = options.isRecogniserGone ? 'closed' : 'aborting';
    this.#wakeWriter();
    if (wasAborted) return; // the caller already dropped it: no one to tell
    this.#error = err;
    this.#settleFinish(null, err);
    this.#logger.warn({ err, code: err.code, streamId: this.streamId }, 'stt stream failed');
    try {
      this.#options.onError(err);
    } catch (callbackErr) {
      this.#logger.error({ err: callbackErr, streamId: this.streamId }, 'stt onError callback threw');
    }
    if (!options.isRecogniserGone) this.#wakeHost();
  }

  /**
   * The worker has something new to do for this stream (a finish or an abort), in its lane: a frame task
   * for a reply-per-frame stream, else the next batch (at once when `isFinishing`: its caller waits).
   */
  #wakeHost(isFinishing = false): void {
    if (this.#markers !== null) this.#host.frameDue(this.handle);
    else if (isFinishing) this.#host.scheduleNow();
    else this.#host.schedule();
  }

  #wakeWriter(): void {
    const resolve = this.#resolveWritable;
    this.#resolveWritable = null;
    this.#writable = null;
    resolve?.();
  }

  #settleFinish(text: string | null, err: VoxgateError | null): void {
    const resolve = this.#resolveFinish;
    const reject = this.#rejectFinish;
    this.#resolveFinish = null;
    this.#rejectFinish = null;
    if (err !== null) reject?.(err);
    else if (text !== null) resolve?.(text);
  }
}

/** The error streams get when their worker died. */
export function workerLostError(cause: Error): SttServiceError {
  return new SttServiceError('speech recognition worker stopped', { cause });
}
