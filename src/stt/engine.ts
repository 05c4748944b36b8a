import type { VoxgateError } from '../errors.js';

/** The sample rates a stream may have (Hz): telephone audio up to studio audio. */
export const MIN_SAMPLE_RATE_HZ = 8000;
export const MAX_SAMPLE_RATE_HZ = 48_000;

export function isSupportedSampleRate(sampleRateHz: number): boolean {
  return Number.isInteger(sampleRateHz) && sampleRateHz >= MIN_SAMPLE_RATE_HZ && sampleRateHz <= MAX_SAMPLE_RATE_HZ;
}

/**
 * A streaming speech recogniser. The dialogue layer opens one stream per recording, pushes raw PCM
 * (signed 16-bit little-endian, mono, at the stream's sample rate) as it arrives, and finishes it to get
 * the rest of the text. Results travel back through the callbacks given at open time, never by import.
 */
export interface SttEngine {
  /** What runs behind this interface: `vosk` (libvosk) or `mock` (the offline stand-in). */
  readonly name: 'vosk' | 'mock';
  /** The sample rate of streams opened without one (Hz, VOSK_SAMPLE_RATE). */
  readonly sampleRate: number;
  /**
   * Opens a stream. Throws SttBusyError when the engine cannot take another stream now, SttServiceError
   * when it cannot start one at all, AudioFormatError for a sample rate outside the supported range.
   * Never queues the stream silently.
   */
  openStream(options: SttStreamOptions): SttStream;
  /** A snapshot for the health routes. */
  health(): SttHealth;
  /** Stops accepting streams, lets open ones finish (bounded by the caller), releases the engine. */
  close(): Promise<void>;
}

export interface SttStreamOptions {
  /** Unique per stream; used for logs and to route all of a stream's audio to one worker. */
  streamId: string;
  /**
   * Sample rate of the stream's PCM (Hz, MIN_SAMPLE_RATE_HZ..MAX_SAMPLE_RATE_HZ); default: the engine's
   * (VOSK_SAMPLE_RATE). Fixed for the stream's life; a higher rate costs more admission capacity.
   */
  sampleRate?: number;
  /** Text recognised so far in the current segment changed (empty string allowed). */
  onPartial(text: string): void;
  /**
   * Does anyone listen for partial texts now? Asked before each piece of audio is decoded; while it
   * answers false the recogniser's partial result is not read (a JSON rendering of its best path: with
   * small models a third of the decoding time) and onPartial is not called. Segments and the final text
   * are unaffected. Default: always.
   */
  wantsPartials?(): boolean;
  /** An endpoint closed a segment; `text` is final and will not be repeated by finish(). */
  onSegment(text: string): void;
  /**
   * The stream failed after it was opened (worker died, recogniser error). The stream is dead: finish()
   * rejects with the same error and further write() calls are ignored.
   */
  onError(err: VoxgateError): void;
  /**
   * vosk-server's protocol (src/asr/): the recogniser is set up as given, and instead of onPartial /
   * onSegment, every frame closed by `endFrame()` and every `reset()` is answered by exactly one
   * `onReply` with libvosk's JSON as it produced it, in order; finish() first delivers the final result
   * through `onReply`, then resolves with ''. Only the vosk engine offers it (ReplyPerFrameStream).
   */
  replyPerFrame?: ReplyPerFrameOptions;
}

/** How a reply-per-frame stream's recogniser is set up, and where its replies go. */
export interface ReplyPerFrameOptions {
  /** Word lists with times in results. */
  words: boolean;
  /** Word lists in partial results too. */
  partialWords: boolean;
  /** n-best results with this many alternatives (0: none). */
  maxAlternatives: number;
  /** Phrases the recogniser may hear (a grammar recogniser), or null for the model's full vocabulary. */
  phraseList: readonly string[] | null;
  /**
   * The vosk engine's speaker model (`SpeakerModel.address`, loaded once per process) to add speaker
   * vectors (`spk`, `spk_frames`) to results, or null.
   */
  speakerModelAddress: bigint | null;
  onReply(json: string): void;
}

/** A stream opened with `replyPerFrame`. */
export interface ReplyPerFrameStream extends SttStream {
  /** Everything written since the last endFrame() is one frame: decode it in one piece and reply. */
  endFrame(): void;
  /** Reply with the final result of what came so far; the stream goes on with a fresh utterance. */
  reset(): void;
  /** Frames and resets not yet answered. */
  readonly pendingReplies: number;
  /** Bytes write() may take now. */
  freeBytes(): number;
  /** Resolves once write() may take `bytes` (at once if it can, or when the stream ends). */
  whenWritable(bytes: number): Promise<void>;
}

export interface SttStream {
  /**
   * Appends PCM. The bytes are copied before this returns, so the caller may reuse its buffer (uWS does).
   * Odd byte counts are fine: a trailing odd byte is kept for the next write.
   */
  write(pcm: Uint8Array): void;
  /** Ends the stream and resolves with the text after the last segment (may be empty). */
  finish(): Promise<string>;
  /** Drops the stream and everything not yet recognised. Idempotent. */
  abort(): void;
  /** Bytes accepted by write() so far. */
  readonly receivedBytes: number;
}

export type ServiceState = 'healthy' | 'degraded' | 'unavailable';

export interface SttHealth {
  engine: 'vosk' | 'mock';
  status: ServiceState;
  /** Why the status is what it is (e.g. "mock engine: no Vosk model found at model/"). */
  reason: string | null;
  modelPath: string | null;
  workers: number;
  activeStreams: number;
  queueDepth: number;
  /** Streams admitted at most (capacity by measured cost, or the lower learned latency limit); null without admission (mock). */
  streamLimit: number | null;
  /** Why a new stream would be refused now (STT_SERVICE_BUSY details start with it), or null; absent without admission. */
  refusing?: 'capacity' | 'latency-limit' | 'no-worker' | null;
}
