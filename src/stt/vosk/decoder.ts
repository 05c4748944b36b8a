// Applies decode batches to libvosk recognisers: one recogniser per stream handle, all of them used by
// exactly one thread (a worker, or the main thread in in-process mode). It reads audio straight from the
// slot's ring (no copy) and turns recogniser output into stream events. Each stream has its own sample
// rate (named by its open op); a rate below the model's is raised first (upsampler.ts).
import { performance } from 'node:perf_hooks';
import vosk from 'vosk-koffi';
import { BatchOp, OP_WIDTH, type DecodeResult, type DecodeTask, type StreamEvent } from '../../../workers/messages.js';
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
  /** A recogniser's partial text is read once this much audio came since the last read (ms). */
  partialIntervalMs: number;
}

/** A recogniser counts as steady after this much audio (s). */
const WARM_UP_SECONDS = 2;

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
  /** Per handle, from its stream's rate: bytes between two reads of the partial text. */
  readonly #partialIntervalBytes: Float64Array;
  readonly #partialIntervalMs: number;
  /** Per handle: 1 while its partial text is read (BatchOp.partials turns it off and on). */
  readonly #readsPartials: Uint8Array;
  /** Per handle: the interpolator of a stream below the model's rate, or null. */
  readonly #upsamplers: (Upsampler | null)[];
  /** Output of the upsamplers (reused; grown to the largest piece seen). */
  #upsampled = new Int16Array(0);

  constructor(options: BatchDecoderOptions) {
    this.#modelAddress = options.modelAddress;
    this.#reader = new AudioRingReader(options.ring);
    this.#threadId = options.threadId;
    this.#recognizers = new Array<unknown>(options.streams).fill(null);
    this.#partials = new Array<string>(options.streams).fill('');
    this.#fedBytes = new Float64Array(options.streams);
    this.#warmUpBytes = new Float64Array(options.streams);
    this.#unreadBytes = new Float64Array(options.streams);
    this.#partialIntervalBytes = new Float64Array(options.streams);
    this.#partialIntervalMs = options.partialIntervalMs;
    this.#upsamplers = new Array<Upsampler | null>(options.streams).fill(null);
    this.#readsPartials = new Uint8Array(options.streams);
  }

  decode(task: DecodeTask): DecodeResult {
    const started = performance.now();
    const events: StreamEvent[] = [];
    const ops = task.ops;
    let steadyBusyMs = 0;
    let steadyAudioBytes = 0;
    for (let i = 0; i + OP_WIDTH <= ops.length; i += OP_WIDTH) {
      const code = ops[i]!;
      const handle = ops[i + 1]!;
      if (handle < 0 || handle >= this.#recognizers.length) {
        throw new RangeError(`stream handle ${handle} out of range`);
      }
      switch (code) {
        case BatchOp.audio: {
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
          this.#open(handle, ops[i + 2]!, ops[i + 3]!, events);
          break;
        case BatchOp.finish:
          this.#finish(handle, events);
          break;
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
      events,
    };
  }

  /** Frees every recogniser (the thread is about to stop). */
  close(): void {
    for (let handle = 0; handle < this.#recognizers.length; handle++) this.#free(handle);
  }

  /** Creates the stream's recogniser for PCM at `sampleRate`, raised by `factor` first when above 1. */
  #open(handle: number, sampleRate: number, factor: number, events: StreamEvent[]): void {
    // A handle is reused only after its previous stream was released, so this frees nothing in practice.
    this.#free(handle);
    const bytesPerSecond = sampleRate * 2;
    this.#warmUpBytes[handle] = WARM_UP_SECONDS * bytesPerSecond;
    this.#partialIntervalBytes[handle] = Math.round((this.#partialIntervalMs * bytesPerSecond) / 1000);
    const recognizer: unknown = libvosk.vosk_recognizer_new(this.#modelAddress, sampleRate * factor);
    if (recognizer === null || recognizer === undefined) {
      events.push({ type: 'error', handle, message: `libvosk could not create a recogniser for ${sampleRate * factor} Hz` });
      return;
    }
    this.#recognizers[handle] = recognizer;
    this.#upsamplers[handle] = factor > 1 ? new Upsampler(factor) : null;
    this.#readsPartials[handle] = 1;
  }

  #setReadsPartials(handle: number, reads: boolean): void {
    if (reads && this.#readsPartials[handle] === 0) {
      // Someone listens again: read at the next piece, and report the text even if it did not change.
      this.#unreadBytes[handle] = this.#partialIntervalBytes[handle]!;
      this.#partials[handle] = '\u0000';
    }
    this.#readsPartials[handle] = reads ? 1 : 0;
  }

  /** Feeds one piece to the stream's recogniser; returns the bytes libvosk decoded (after upsampling). */
  #accept(handle: number, offset: number, length: number, events: StreamEvent[]): number {
    const recognizer = this.#recognizers[handle];
    // Audio queued behind a failed open is dropped; the main thread already failed the stream.
    if (recognizer === null) return 0;
    this.#fedBytes[handle] = this.#fedBytes[handle]! + length;
    let audio = this.#reader.piece(offset, length);
    const upsampler = this.#upsamplers[handle];
    if (upsampler !== null && upsampler !== undefined) {
      // Ring pieces start at even offsets, so the samples can be read in place.
      const samples = new Int16Array(audio.buffer, audio.byteOffset, length / 2);
      const outputSamples = samples.length * upsampler.factor;
      if (this.#upsampled.length < outputSamples) this.#upsampled = new Int16Array(outputSamples);
      upsampler.process(samples, this.#upsampled);
      audio = new Uint8Array(this.#upsampled.buffer, 0, outputSamples * 2);
    }
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
      if (text !== '') events.push({ type: 'segment', handle, text });
      return fedLength;
    }
    // Reading the partial text costs libvosk a JSON rendering of the best path: with small models that
    // was 40 % of the decoding time when read after every 100 ms piece. Nobody listening: not at all.
    if (this.#readsPartials[handle] === 0) return fedLength;
    const unread = this.#unreadBytes[handle]! + length;
    if (unread < this.#partialIntervalBytes[handle]!) {
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

  #finish(handle: number, events: StreamEvent[]): void {
    const recognizer = this.#recognizers[handle];
    if (recognizer === null) return;
    const text = (JSON.parse(libvosk.vosk_recognizer_final_result(recognizer) as string) as TextJson).text ?? '';
    this.#free(handle);
    events.push({ type: 'final', handle, text });
  }

  #free(handle: number): void {
    const recognizer = this.#recognizers[handle];
    if (recognizer === null) return;
    this.#recognizers[handle] = null;
    this.#upsamplers[handle] = null;
    this.#partials[handle] = '';
    this.#fedBytes[handle] = 0;
    this.#unreadBytes[handle] = 0;
    libvosk.vosk_recognizer_free(recognizer);
  }
}
