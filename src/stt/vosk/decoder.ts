// Applies decode batches to libvosk recognisers: one recogniser per stream handle, all of them used by
// exactly one thread (a worker, or the main thread in in-process mode). It reads audio straight from the
// slot's ring (no copy) and turns recogniser output into stream events. Each stream has its own sample
// rate (named by its open op); a rate below the model's is raised first (upsampler.ts).
//
// Reply-per-frame streams (vosk-server's protocol, src/asr/) work differently: their AUDIO ops only
// gather one client frame, and the REPLY op after them feeds that frame in one accept call and reports
// libvosk's JSON string as libvosk produced it (the result at an endpoint, else the partial), as
// vosk-server does per message. Feeding a frame in several calls could end an utterance at a different
// point than vosk-server does.
import { performance } from 'node:perf_hooks';
import vosk from 'vosk-koffi';
import { BatchOp, OP_WIDTH, type DecodeResult, type DecodeTask, type RecognizerConfig, type StreamEvent } from '../../../workers/messages.js';
import { AudioRingReader } from './audio-ring.js';
import { Upsampler } from './upsampler.js';

const { libvosk } = vosk;

export interface BatchDecoderOptions {
  modelAddress: bigint;
  ring: SharedArrayBuffer;
  /** Stream handles the ring holds (recogniser table size). */
  streams: number;
  /** Reported in every result so the main thread can prove a stream never changed thread. */
  threadId: number;
  /** A recogniser's partial text is read once at least this much audio came since the last read (ms; more as its segment grows). */
  partialIntervalMs: number;
}

/** A recogniser counts as steady after this much audio (s). */
const WARM_UP_SECONDS = 2;
/**
 * A partial text is read once `partialIntervalMs` of audio came, or a tenth of the segment so far if that
 * is longer, capped at a second: a read walks the best path of the whole segment, so at a fixed interval
 * a stream's cost grew with its segment (bench/README.md, stt-partials), and speakers deep in their
 * utterances all cost most at once. Paced, reads cost about the same per audio-second for the first 10 s
 * of a segment; past the cap their cost grows with the segment again, five times slower than at 200 ms.
 */
const PARTIAL_INTERVAL_SHARE = 0.1;
const MAX_PACED_PARTIAL_INTERVAL_SECONDS = 1;

interface PartialJson {
  partial?: string;
}
interface TextJson {
  text?: string;
}

export class BatchDecoder {
  readonly #modelAddress: bigint;
  readonly #reader: AudioRingReader;
  readonly #threadId: number;
  /** Native `VoskRecognizer *` per handle, or null. */
  readonly #recognizers: unknown[];
  /** Last partial text reported per handle (partials are only sent when they change). */
  readonly #partials: string[];
  /** Stream audio bytes (as received, before upsampling) each recogniser has been fed. */
  readonly #fedBytes: Float64Array;
  /** Per handle, from its stream's rate: bytes after which a recogniser counts as steady. */
  readonly #warmUpBytes: Float64Array;
  /** Stream audio bytes each recogniser was fed since its partial text was last read. */
  readonly #unreadBytes: Float64Array;
  /** Per handle: stream audio bytes since the segment began (open, the last endpoint, or a reset). */
  readonly #segmentBytes: Float64Array;
  /** Per handle: stream audio bytes per second (its rate). */
  readonly #bytesPerSecond: Float64Array;
  readonly #partialIntervalMs: number;
  /** Per handle: 1 while its partial text is read (BatchOp.partials turns it off and on). */
  readonly #readsPartials: Uint8Array;
  /** Per handle: the interpolator of a stream below the model's rate, or null. */
  readonly #upsamplers: (Upsampler | null)[];
  /** Output of the upsamplers (reused; grown to the largest piece seen). */
  #upsampled = new Int16Array(0);
  /** Per handle: 1 when the stream is reply-per-frame (its audio is gathered until its REPLY op). */
  readonly #isReplyPerFrame: Uint8Array;
  /** Per handle: the frame gathered so far (reply-per-frame streams; grown to the largest frame). */
  readonly #frames: (Uint8Array | null)[];
  readonly #frameBytes: Float64Array;

  constructor(options: BatchDecoderOptions) {
    this.#modelAddress = options.modelAddress;
    this.#reader = new AudioRingReader(options.ring);
    this.#threadId = options.threadId;
    this.#recognizers = new Array<unknown>(options.streams).fill(null);
    this.#partials = new Array<string>(options.streams).fill('');
    this.#fedBytes = new Float64Array(options.streams);
    this.#warmUpBytes = new Float64Array(options.streams);
    this.#unreadBytes = new Float64Array(options.streams);
    this.#segmentBytes = new Float64Array(options.streams);
    this.#bytesPerSecond = new Float64Array(options.streams);
    this.#partialIntervalMs = options.partialIntervalMs;
    this.#upsamplers = new Array<Upsampler | null>(options.streams).fill(null);
    this.#isReplyPerFrame = new Uint8Array(options.streams);
    this.#frames = new Array<Uint8Array | null>(options.streams).fill(null);
    this.#frameBytes = new Float64Array(options.streams);
    this.#readsPartials = new Uint8Array(options.streams);
  }

  decode(task: DecodeTask): DecodeResult {
    const started = performance.now();
    const events: StreamEvent[] = [];
    const ops = task.ops;
    let steadyBusyMs = 0;
    let steadyAudioBytes = 0;
    let finalBusyMs = 0;
    let finalAudioBytes = 0;
    for (let i = 0; i + OP_WIDTH <= ops.length; i += OP_WIDTH) {
      const code = ops[i]!;
      const handle = ops[i + 1]!;
      if (handle < 0 || handle >= this.#recognizers.length) {
        throw new RangeError(`stream handle ${handle} out of range`);
      }
      switch (code) {
        case BatchOp.audio: {
          if (this.#isReplyPerFrame[handle] === 1) {
            this.#gather(handle, ops[i + 2]!, ops[i + 3]!);
            break;
          }
          const isSteady = this.#fedBytes[handle]! >= this.#warmUpBytes[handle]!;
          const opStarted = isSteady ? performance.now() : 0;
          const fedLength = this.#accept(handle, ops[i + 2]!, ops[i + 3]!, events);
          if (isSteady) {
            steadyBusyMs += performance.now() - opStarted;
            steadyAudioBytes += fedLength;
          }
          break;
        }
        case BatchOp.open:
          this.#open(handle, ops[i + 2]!, ops[i + 3]!, configFor(task, handle), events);
          break;
        case BatchOp.reply: {
          const isSteady = this.#fedBytes[handle]! >= this.#warmUpBytes[handle]!;
          const opStarted = isSteady ? performance.now() : 0;
          const fedLength = this.#replyToFrame(handle, events);
          if (isSteady) {
            steadyBusyMs += performance.now() - opStarted;
            steadyAudioBytes += fedLength;
          }
          break;
        }
        case BatchOp.reset:
          this.#reset(handle, events);
          break;
        case BatchOp.finish: {
          const opStarted = performance.now();
          finalAudioBytes += this.#decodedBytes(handle);
          this.#finish(handle, events);
          finalBusyMs += performance.now() - opStarted;
          break;
        }
        case BatchOp.abort:
          this.#free(handle);
          events.push({ type: 'released', handle });
          break;
        case BatchOp.partials:
          this.#setReadsPartials(handle, ops[i + 2] === 1);
          break;
        default:
          throw new RangeError(`unknown batch op ${code}`);
      }
    }
    return {
      type: 'decoded',
      slot: task.slot,
      seq: task.seq,
      threadId: this.#threadId,
      busyMs: performance.now() - started,
      steadyBusyMs,
      steadyAudioBytes,
      finalBusyMs,
      finalAudioBytes,
      events,
    };
  }

  /** Frees every recogniser (the thread is about to stop). */
  close(): void {
    for (let handle = 0; handle < this.#recognizers.length; handle++) this.#free(handle);
  }

  /**
   * Creates the stream's recogniser for PCM at `sampleRate`, raised by `factor` first when above 1, set
   * up as `config` says (null: a plain recogniser, as the conversation endpoint uses).
   */
  #open(handle: number, sampleRate: number, factor: number, config: RecognizerConfig | null, events: StreamEvent[]): void {
    // A handle is reused only after its previous stream was released, so this frees no recogniser in
    // practice; it clears what a failed open left on the handle.
    this.#free(handle);
    const bytesPerSecond = sampleRate * 2;
    this.#bytesPerSecond[handle] = bytesPerSecond;
    this.#warmUpBytes[handle] = WARM_UP_SECONDS * bytesPerSecond;
    const modelRate = sampleRate * factor;
    const grammar = config?.grammarJson ?? null;
    const recognizer: unknown =
      grammar === null
        ? libvosk.vosk_recognizer_new(this.#modelAddress, modelRate)
        : libvosk.vosk_recognizer_new_grm(this.#modelAddress, modelRate, grammar);
    if (recognizer === null || recognizer === undefined) {
      events.push({ type: 'error', handle, message: `libvosk could not create a recogniser for ${modelRate} Hz${grammar === null ? '' : ' with a grammar'}` });
      return;
    }
    if (config !== null) {
      libvosk.vosk_recognizer_set_words(recognizer, config.words ? 1 : 0);
      if (config.partialWords) libvosk.vosk_recognizer_set_partial_words(recognizer, 1);
      if (config.maxAlternatives > 0) libvosk.vosk_recognizer_set_max_alternatives(recognizer, config.maxAlternatives);
      if (config.speakerModelAddress !== null) libvosk.vosk_recognizer_set_spk_model(recognizer, config.speakerModelAddress);
      this.#isReplyPerFrame[handle] = config.isReplyPerFrame ? 1 : 0;
    }
    this.#recognizers[handle] = recognizer;
    this.#upsamplers[handle] = factor > 1 ? new Upsampler(factor) : null;
    this.#readsPartials[handle] = 1;
  }

  #setReadsPartials(handle: number, reads: boolean): void {
    if (reads && this.#readsPartials[handle] === 0) {
      // Someone listens again: read at the next piece, and report the text even if it did not change.
      this.#unreadBytes[handle] = Number.POSITIVE_INFINITY;
      this.#partials[handle] = '\u0000';
    }
    this.#readsPartials[handle] = reads ? 1 : 0;
  }

  /** Appends one ring piece to the stream's frame (reply-per-frame streams). */
  #gather(handle: number, offset: number, length: number): void {
    if (this.#recognizers[handle] === null) return;
    const have = this.#frameBytes[handle]!;
    let frame = this.#frames[handle] ?? null;
    if (frame === null || frame.byteLength < have + length) {
      const grown = new Uint8Array(Math.max(have + length, 2 * (frame?.byteLength ?? 0)));
      if (frame !== null) grown.set(frame.subarray(0, have));
      frame = grown;
      this.#frames[handle] = frame;
    }
    frame.set(this.#reader.piece(offset, length), have);
    this.#frameBytes[handle] = have + length;
  }

  /** Feeds the gathered frame in one accept call and reports libvosk's answer; returns the bytes fed. */
  #replyToFrame(handle: number, events: StreamEvent[]): number {
    const recognizer = this.#recognizers[handle];
    if (recognizer === null) return 0;
    const length = this.#frameBytes[handle]!;
    this.#frameBytes[handle] = 0;
    this.#fedBytes[handle] = this.#fedBytes[handle]! + length;
    const audio = this.#upsample(handle, this.#frames[handle] ?? new Uint8Array(0), length);
    const status = libvosk.vosk_recognizer_accept_waveform(recognizer, audio, audio.byteLength) as number;
    if (status < 0) {
      this.#free(handle);
      events.push({ type: 'error', handle, message: 'libvosk rejected the audio' });
      return audio.byteLength;
    }
    const json = (status === 1 ? libvosk.vosk_recognizer_result(recognizer) : libvosk.vosk_recognizer_partial_result(recognizer)) as string;
    events.push({ type: 'reply', handle, json });
    return audio.byteLength;
  }

  /** Reports the final result so far and starts a new utterance on the same recogniser. */
  #reset(handle: number, events: StreamEvent[]): void {
    const recognizer = this.#recognizers[handle];
    if (recognizer === null) return;
    const json = libvosk.vosk_recognizer_final_result(recognizer) as string;
    libvosk.vosk_recognizer_reset(recognizer);
    this.#segmentBytes[handle] = 0;
    events.push({ type: 'reply', handle, json });
  }

  /** `length` bytes of `audio` as libvosk takes them: raised to the model's rate when the stream is below it. */
  #upsample(handle: number, audio: Uint8Array, length: number): Uint8Array {
    const upsampler = this.#upsamplers[handle];
    if (upsampler === null || upsampler === undefined) return audio.subarray(0, length);
    // Frames and ring pieces start at even offsets, so the samples can be read in place.
    const samples = new Int16Array(audio.buffer, audio.byteOffset, length >> 1);
    const outputSamples = samples.length * upsampler.factor;
    if (this.#upsampled.length < outputSamples) this.#upsampled = new Int16Array(outputSamples);
    upsampler.process(samples, this.#upsampled);
    return new Uint8Array(this.#upsampled.buffer, 0, outputSamples * 2);
  }

  /** Feeds one piece to the stream's recogniser; returns the bytes libvosk decoded (after upsampling). */
  #accept(handle: number, offset: number, length: number, events: StreamEvent[]): number {
    const recognizer = this.#recognizers[handle];
    // Audio queued behind a failed open is dropped; the main thread already failed the stream.
    if (recognizer === null) return 0;
    this.#fedBytes[handle] = this.#fedBytes[handle]! + length;
    this.#segmentBytes[handle] = this.#segmentBytes[handle]! + length;
    const audio = this.#upsample(handle, this.#reader.piece(offset, length), length);
    const fedLength = audio.byteLength;
    const status = libvosk.vosk_recognizer_accept_waveform(recognizer, audio, fedLength) as number;
    if (status < 0) {
      this.#free(handle);
      events.push({ type: 'error', handle, message: 'libvosk rejected the audio' });
      return fedLength;
    }
    if (status === 1) {
      // Endpoint: the segment's text is final now and the next partial starts from scratch.
      const text = (JSON.parse(libvosk.vosk_recognizer_result(recognizer) as string) as TextJson).text ?? '';
      this.#partials[handle] = '';
      this.#unreadBytes[handle] = 0;
      this.#segmentBytes[handle] = 0;
      if (text !== '') events.push({ type: 'segment', handle, text });
      return fedLength;
    }
    // Reading the partial text costs libvosk a JSON rendering of the best path: with small models that
    // was 40 % of the decoding time when read after every 100 ms piece. Nobody listening: not at all.
    if (this.#readsPartials[handle] === 0) return fedLength;
    const unread = this.#unreadBytes[handle]! + length;
    if (unread < this.#partialIntervalBytesOf(handle)) {
      this.#unreadBytes[handle] = unread;
      return fedLength;
    }
    this.#unreadBytes[handle] = 0;
    const partial = (JSON.parse(libvosk.vosk_recognizer_partial_result(recognizer) as string) as PartialJson).partial ?? '';
    if (partial !== this.#partials[handle]) {
      this.#partials[handle] = partial;
      events.push({ type: 'partial', handle, text: partial });
    }
    return fedLength;
  }

  /** Bytes of stream audio between two reads of the handle's partial text now (PARTIAL_INTERVAL_SHARE). */
  #partialIntervalBytesOf(handle: number): number {
    const bytesPerSecond = this.#bytesPerSecond[handle]!;
    const paced = Math.min(this.#segmentBytes[handle]! * PARTIAL_INTERVAL_SHARE, bytesPerSecond * MAX_PACED_PARTIAL_INTERVAL_SECONDS);
    return Math.max(Math.round((this.#partialIntervalMs * bytesPerSecond) / 1000), paced);
  }

  /** Bytes libvosk decoded for the stream so far (after upsampling), 0 without a recogniser. */
  #decodedBytes(handle: number): number {
    if (this.#recognizers[handle] === null) return 0;
    return this.#fedBytes[handle]! * (this.#upsamplers[handle]?.factor ?? 1);
  }

  #finish(handle: number, events: StreamEvent[]): void {
    const recognizer = this.#recognizers[handle];
    if (recognizer === null) return;
    if (this.#isReplyPerFrame[handle] === 1) {
      // vosk-server answers eof with the final result as libvosk produced it.
      events.push({ type: 'reply', handle, json: libvosk.vosk_recognizer_final_result(recognizer) as string });
      this.#free(handle);
      events.push({ type: 'final', handle, text: '' });
      return;
    }
    const text = (JSON.parse(libvosk.vosk_recognizer_final_result(recognizer) as string) as TextJson).text ?? '';
    this.#free(handle);
    events.push({ type: 'final', handle, text });
  }

  /** Frees the handle's recogniser, if any, and forgets everything of its stream (also after a failed open). */
  #free(handle: number): void {
    const recognizer = this.#recognizers[handle];
    this.#recognizers[handle] = null;
    this.#upsamplers[handle] = null;
    this.#partials[handle] = '';
    this.#fedBytes[handle] = 0;
    this.#unreadBytes[handle] = 0;
    this.#segmentBytes[handle] = 0;
    this.#isReplyPerFrame[handle] = 0;
    this.#frameBytes[handle] = 0;
    // A large frame's buffer is not kept for the next stream on this handle.
    this.#frames[handle] = null;
    if (recognizer !== null) libvosk.vosk_recognizer_free(recognizer);
  }
}

function configFor(task: DecodeTask, handle: number): RecognizerConfig | null {
  const configs = task.recognizers;
  if (configs === undefined) return null;
  for (const config of configs) if (config.handle === handle) return config;
  return null;
}
