// The typed messages between the main thread (src/stt/vosk/) and workers/vosk-worker.ts. Audio never
// travels in a message: a task carries (handle, offset, length) triples into the worker's
// SharedArrayBuffer ring (src/stt/vosk/audio-ring.ts is the only place that computes them).

/** What one worker needs once, at start-up (Piscina workerData). */
export interface VoskWorkerData {
  /** Address of the process's one native `VoskModel` (loaded on the main thread; never freed before us). */
  modelAddress: bigint;
  /** One audio ring per worker slot; a worker serves exactly one slot, named by its first task. */
  rings: SharedArrayBuffer[];
  /** Stream handles per ring. */
  streamsPerSlot: number;
  /** A recogniser's partial text is read once this much audio came since the last read (ms). */
  partialIntervalMs: number;
}

/**
 * Operation codes in a DecodeTask's `ops`. Each op is OP_WIDTH int32s: [code, handle, offset, length].
 * `handle` numbers a stream within its slot; offset/length are the piece for AUDIO, and for OPEN the
 * stream's sample rate (Hz) and its upsampling factor (1, or the whole factor that lifts a rate below
 * the model's to at least the model's).
 */
export const BatchOp = {
  /** Create the stream's recogniser: [open, handle, sampleRateHz, upsampleFactor]. */
  open: 1,
  /** Feed `length` bytes at ring byte `offset` (always even, never wrapping). */
  audio: 2,
  /** Flush, emit the final text, free the recogniser. */
  finish: 3,
  /** Free the recogniser without a final text. */
  abort: 4,
  /**
   * Reply-per-frame streams (src/asr/): feed the audio the stream's AUDIO ops gathered since its last
   * reply in one accept call (one client frame), and report libvosk's JSON: [reply, handle, 0, 0].
   */
  reply: 5,
  /** Reply-per-frame streams: report the final result so far, then reset the recogniser: [reset, handle, 0, 0]. */
  reset: 6,
  /**
   * Read partial results or not: [partials, handle, 1 | 0, 0]. A new recogniser reads them; the main
   * thread sends this when nobody listens for the stream's partials (and again when someone does).
   */
  partials: 7,
} as const;
export type BatchOpCode = (typeof BatchOp)[keyof typeof BatchOp];
export const OP_WIDTH = 4;

/**
 * How a stream's recogniser is set up beyond its sample rate (vosk-server's per-connection config). Sent
 * with the batch that carries the stream's OPEN op; streams without one get a plain recogniser.
 */
export interface RecognizerConfig {
  handle: number;
  /** Word list with times in results (vosk_recognizer_set_words). */
  words: boolean;
  /** Word list in partial results too (vosk_recognizer_set_partial_words). */
  partialWords: boolean;
  /** n-best list of this many alternatives in results (0: none). */
  maxAlternatives: number;
  /** A JSON array of phrases: a grammar recogniser (vosk_recognizer_new_grm), or null. */
  grammarJson: string | null;
  /** Address of the process's speaker model (src/stt/vosk/speaker-model.ts), or null: no `spk` in results. */
  speakerModelAddress: bigint | null;
  /** Every client frame is decoded in one accept call and answered by one `reply` event (REPLY ops). */
  isReplyPerFrame: boolean;
}

/** All pending work of one slot's streams at one tick, in order. */
export interface DecodeTask {
  type: 'decode';
  slot: number;
  /** Batch sequence number within the slot (echoed back; results arrive in order). */
  seq: number;
  ops: Int32Array;
  /** Set-up of the streams this batch opens that need more than a plain recogniser (absent: none). */
  recognizers?: RecognizerConfig[];
}

/**
 * Ends the thread after the batches posted before it: it frees its recognisers and exits between native
 * calls. (Terminating a thread from outside while it is inside libvosk aborts the whole process.)
 */
export interface StopTask {
  type: 'stop';
  slot: number;
}

export type WorkerTask = DecodeTask | StopTask;

export type StreamEvent =
  /** The text of the current segment changed. */
  | { type: 'partial'; handle: number; text: string }
  /** An endpoint closed a segment (only non-empty texts are reported). */
  | { type: 'segment'; handle: number; text: string }
  /** finish: the text after the last segment; the recogniser is freed. */
  | { type: 'final'; handle: number; text: string }
  /** A reply-per-frame stream's answer to one frame, RESET or FINISH: libvosk's JSON exactly as it produced it. */
  | { type: 'reply'; handle: number; json: string }
  /** abort acknowledged; the recogniser is freed. */
  | { type: 'released'; handle: number }
  /** The recogniser could not be created or rejected audio; it is freed and the handle is free. */
  | { type: 'error'; handle: number; message: string };

export interface DecodeResult {
  type: 'decoded';
  slot: number;
  seq: number;
  /** worker_threads threadId of the thread that ran the batch (0 on the main thread). */
  threadId: number;
  /** Time spent inside libvosk and result parsing for this batch (ms). */
  busyMs: number;
  /**
   * Time spent on audio for recognisers past their first two seconds (ms), and those bytes: the steady
   * decode cost per second of audio. Creating recognisers and final texts cost per recording, batches
   * cost per message, and a recogniser decodes its first frames cheaply; none of that is a stream's
   * cost per second of audio.
   */
  steadyBusyMs: number;
  steadyAudioBytes: number;
  /**
   * Time spent on final texts (ms), and the audio bytes libvosk decoded for the recordings they ended:
   * a final text costs per recording, so load-meter.ts spreads it over its recording's audio.
   */
  finalBusyMs: number;
  finalAudioBytes: number;
  events: StreamEvent[];
}

export type WorkerResult = DecodeResult;

export function assertNever(value: never): never {
  throw new TypeError(`unexpected message: ${JSON.stringify(value)}`);
}
