// Applies decode batches to libvosk recognisers: one recogniser per stream handle, all of them used by
// exactly one thread (a worker, or the main thread in in-process mode). It reads audio straight from the
// slot's ring (no copy) and turns recogniser output into stream events.
import { performance } from 'node:perf_hooks';
import vosk from 'vosk-koffi';
import { BatchOp, OP_WIDTH, type DecodeResult, type DecodeTask, type StreamEvent } from '../../../workers/messages.js';
import { AudioRingReader } from './audio-ring.js';

const { libvosk } = vosk;

export interface BatchDecoderOptions {
  modelAddress: bigint;
  sampleRate: number;
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
  readonly #sampleRate: number;
  readonly #reader: AudioRingReader;
  readonly #threadId: number;
  /** Native `VoskRecognizer *` per handle, or null. */
  readonly #recognizers: unknown[];
  /** Last partial text reported per handle (partials are only sent when they change). */
  readonly #partials: string[];
  /** Audio bytes each recogniser has been fed. */
  readonly #fedBytes: Float64Array;
  readonly #warmUpBytes: number;
  /** Audio bytes each recogniser was fed since its partial text was last read. */
  readonly #unreadBytes: Float64Array;
  readonly #partialIntervalBytes: number;

  constructor(options: BatchDecoderOptions) {
    this.#modelAddress = options.modelAddress;
    this.#sampleRate = options.sampleRate;
    this.#reader = new AudioRingReader(options.ring);
    this.#threadId = options.threadId;
    this.#recognizers = new Array<unknown>(options.streams).fill(null);
    this.#partials = new Array<string>(options.streams).fill('');
    this.#fedBytes = new Float64Array(options.streams);
    this.#warmUpBytes = WARM_UP_SECONDS * options.sampleRate * 2;
    this.#unreadBytes = new Float64Array(options.streams);
    this.#partialIntervalBytes = Math.round((options.partialIntervalMs * options.sampleRate * 2) / 1000);
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
          const isSteady = this.#fedBytes[handle]! >= this.#warmUpBytes;
          const opStarted = isSteady ? performance.now() : 0;
          const length = this.#accept(handle, ops[i + 2]!, ops[i + 3]!, events);
          if (isSteady) {
            steadyBusyMs += performance.now() - opStarted;
            steadyAudioBytes += length;
          }
          break;
        }
        case BatchOp.open:
          this.#open(handle, events);
          break;
        case BatchOp.finish:
          this.#finish(handle, events);
          break;
        case BatchOp.abort:
          this.#free(handle);
          events.push({ type: 'released', handle });
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

  #open(handle: number, events: StreamEvent[]): void {
    // A handle is reused only after its previous stream was released, so this frees nothing in practice.
    this.#free(handle);
    const recognizer: unknown = libvosk.vosk_recognizer_new(this.#modelAddress, this.#sampleRate);
    if (recognizer === null || recognizer === undefined) {
      events.push({ type: 'error', handle, message: 'libvosk could not create a recogniser' });
      return;
    }
    this.#recognizers[handle] = recognizer;
  }

  #accept(handle: number, offset: number, length: number, events: StreamEvent[]): number {
    const recognizer = this.#recognizers[handle];
    // Audio queued behind a failed open is dropped; the main thread already failed the stream.
    if (recognizer === null) return 0;
    this.#fedBytes[handle] = this.#fedBytes[handle]! + length;
    const status = libvosk.vosk_recognizer_accept_waveform(recognizer, this.#reader.piece(offset, length), length) as number;
    if (status < 0) {
      this.#free(handle);
      events.push({ type: 'error', handle, message: 'libvosk rejected the audio' });
      return length;
    }
    if (status === 1) {
      // Endpoint: the segment's text is final now and the next partial starts from scratch.
      const text = (JSON.parse(libvosk.vosk_recognizer_result(recognizer) as string) as TextJson).text ?? '';
      this.#partials[handle] = '';
      this.#unreadBytes[handle] = 0;
      if (text !== '') events.push({ type: 'segment', handle, text });
      return length;
    }
    // Reading the partial text costs libvosk a JSON rendering of the best path: with small models that
    // was 40 % of the decoding time when read after every 100 ms piece.
    const unread = this.#unreadBytes[handle]! + length;
    if (unread < this.#partialIntervalBytes) {
      this.#unreadBytes[handle] = unread;
      return length;
    }
    this.#unreadBytes[handle] = 0;
    const partial = (JSON.parse(libvosk.vosk_recognizer_partial_result(recognizer) as string) as PartialJson).partial ?? '';
    if (partial !== this.#partials[handle]) {
      this.#partials[handle] = partial;
      events.push({ type: 'partial', handle, text: partial });
    }
    return length;
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
    this.#partials[handle] = '';
    this.#fedBytes[handle] = 0;
    this.#unreadBytes[handle] = 0;
    libvosk.vosk_recognizer_free(recognizer);
  }
}
