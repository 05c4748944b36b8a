// One /asr connection: vosk-server's protocol on top of a reply-per-frame STT stream. It owns the
// connection's recogniser settings, its stream, and the frames received but not yet handed to the
// stream. Every binary frame gets exactly one text reply, in order (libvosk's JSON as produced), eof
// gets the final result and a 1000 close, reset the final result so far. Nothing here waits for more
// audio than a client sent: lockstep clients (send, wait for the reply) are answered per frame.
import type { Logger } from 'pino';
import { AudioFormatError, AudioLimitExceededError, InvalidEventDataError, SttBusyError, VoxgateError } from '../errors.js';
import { parseWavHeader } from '../stt/audio-format.js';
import type { ReplyPerFrameOptions, ReplyPerFrameStream, SttStreamOptions } from '../stt/engine.js';
import { parseAsrText, type AsrConfig } from './client-messages.js';

/** WebSocket close codes of the /asr endpoint (RFC 6455 7.4.1). */
export const AsrCloseCode = {
  /** After the final result of an eof. */
  normal: 1000,
  /** A text frame that is not config, eof or reset; a WAV that is not 16-bit mono PCM. */
  unsupportedData: 1003,
  /** A config the server cannot honour (unknown model, bad field), or a client far ahead of its replies. */
  policyViolation: 1008,
  /** One frame larger than the stream's audio buffer. */
  messageTooBig: 1009,
  /** The recogniser failed. */
  internalError: 1011,
  /** No recognition capacity now: before any reply was sent. */
  tryAgainLater: 1013,
} as const;

/** What the session needs of its connection (transport/connection.ts implements it). */
export interface AsrChannel {
  readonly log: Logger;
  readonly isClosed: boolean;
  /** Sends one text frame; false when the connection is (being) closed. */
  sendText(text: string): boolean;
  close(code: number, reason: string): void;
}

/** The connection's recogniser settings before any config frame (ASR_* settings and the upgrade path). */
export interface AsrDefaults {
  sampleRate: number;
  words: boolean;
  maxAlternatives: number;
  /** The speaker model every stream's recogniser gets (VOSK_SPK_MODEL_PATH), or null. */
  speakerModelAddress: bigint | null;
}

export interface AsrSessionOptions {
  streamId: string;
  channel: AsrChannel;
  defaults: AsrDefaults;
  /** Opens a reply-per-frame stream; throws SttBusyError at capacity (any VoxgateError refuses the stream). */
  openStream(options: SttStreamOptions & { replyPerFrame: ReplyPerFrameOptions }): ReplyPerFrameStream;
  /** Whether `name` (a config's `model`) names a model this server serves. */
  isKnownModel(name: string): boolean;
  /** Called once when a stream is opened, and its return once when it ends (quotas, metrics). */
  onStreamOpened(): () => void;
  /** Called before a stream opens; throws a VoxgateError (quota) to refuse it. */
  checkStream(): void;
}

/** Most bytes of frames a client may send ahead of the recogniser before it is closed (a 2-minute 16 kHz file). */
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
/** Most frames (and eof/reset) a client may send ahead of its replies. */
export const MAX_QUEUED_MESSAGES = 4096;
/** Frames handed to the stream but not yet answered, at most (the rest wait here, in order). */
const MAX_FRAMES_IN_STREAM = 64;
/** Taken entries at the queue's front after which it is compacted. */
const COMPACT_AFTER = 1024;

type Queued = Uint8Array | 'eof' | 'reset';

export class AsrSession {
  readonly #options: AsrSessionOptions;
  readonly #log: Logger;
  #config: Required<Omit<AsrConfig, 'phraseList' | 'model'>> & { phraseList: readonly string[] | null; isSampleRateSet: boolean; isWordsSet: boolean };
  #stream: ReplyPerFrameStream | null = null;
  /** The stream's whole buffer: a frame larger than this can never be written. */
  #streamCapacityBytes = 0;
  #isEnded = false;
  #isFirstAudio = true;
  #endStream: (() => void) | null = null;
  /** Frames and controls not yet handed to the stream, oldest first, from #queueHead. */
  #queue: Queued[] = [];
  #queueHead = 0;
  #queuedBytes = 0;
  #isWaitingForRoom = false;
  readonly #pumpAfterRoom = (): void => {
    this.#isWaitingForRoom = false;
    this.#pump();
  };

  constructor(options: AsrSessionOptions) {
    this.#options = options;
    this.#log = options.channel.log;
    this.#config = {
      sampleRate: options.defaults.sampleRate,
      isSampleRateSet: false,
      isWordsSet: false,
      words: options.defaults.words,
      maxAlternatives: options.defaults.maxAlternatives,
      phraseList: null,
    };
  }

  /** A text frame: config (before the first audio), eof or reset. */
  onText(text: string): void {
    if (this.#isEnded) return;
    const parsed = parseAsrText(text);
    if (!parsed.ok) return this.#fail(parsed.error, AsrCloseCode.unsupportedData);
    const message = parsed.message;
    switch (message.kind) {
      case 'config':
        return this.#configure(message.config);
      case 'eof':
      case 'reset':
        if (!this.#ensureStream()) return;
        return this.#enqueue(message.kind, 0);
    }
  }

  /** A binary frame: PCM16 mono at the stream's rate; a WAV header at the very start is skipped. */
  onBinary(bytes: Uint8Array): void {
    if (this.#isEnded) return;
    let audio = bytes;
    if (this.#isFirstAudio) {
      this.#isFirstAudio = false;
      let header;
      try {
        header = parseWavHeader(bytes);
      } catch (err) {
        if (err instanceof AudioFormatError) return this.#fail(err, AsrCloseCode.unsupportedData);
        throw err;
      }
      if (header !== null) {
        audio = bytes.subarray(header.dataOffset);
        // vosk-server decodes the header as audio at the configured rate; the file's own rate is the
        // better guess when the client did not name one.
        if (!this.#config.isSampleRateSet && this.#stream === null) this.#config.sampleRate = header.sampleRateHz;
      }
    }
    if (!this.#ensureStream()) return;
    if (audio.byteLength > this.#streamCapacityBytes) {
      return this.#fail(
        new AudioLimitExceededError(`a frame of ${audio.byteLength} bytes is larger than the stream buffer of ${this.#streamCapacityBytes} bytes`, {
          details: 'send audio in frames of at most a few seconds',
        }),
        AsrCloseCode.messageTooBig,
      );
    }
    // Straight into the stream when nothing waits before it (the stream copies); else a copy waits
    // here (uWS reuses the frame's buffer after this callback).
    if (this.#queueHead === this.#queue.length && this.#canWrite(audio.byteLength)) {
      this.#write(audio);
      return;
    }
    this.#enqueue(audio.slice(), audio.byteLength);
  }

  /** The connection closed (either side): drop the stream unless it already ended. */
  onClosed(): void {
    this.#isEnded = true;
    this.#queue = [];
    this.#queueHead = 0;
    this.#queuedBytes = 0;
    this.#stream?.abort();
    this.#release();
  }

  #configure(config: AsrConfig): void {
    if (this.#stream !== null) {
      // As in vosk-server: a config after the first audio changes nothing for this stream.
      this.#log.debug('asr config after audio ignored');
      return;
    }
    if (config.model !== undefined && !this.#options.isKnownModel(config.model)) {
      return this.#fail(
        new InvalidEventDataError(`model ${JSON.stringify(config.model.slice(0, 64))} is not served here`, { details: 'config.model: expected one of ASR_MODEL_NAMES' }),
        AsrCloseCode.policyViolation,
      );
    }
    if (config.sampleRate !== undefined) {
      this.#config.sampleRate = config.sampleRate;
      this.#config.isSampleRateSet = true;
    }
    if (config.words !== undefined) {
      this.#config.words = config.words;
      this.#config.isWordsSet = true;
    }
    if (config.maxAlternatives !== undefined) this.#config.maxAlternatives = config.maxAlternatives;
    if (config.phraseList !== undefined) this.#config.phraseList = config.phraseList.length === 0 ? null : config.phraseList;
  }

  /** Opens the stream at the first audio, eof or reset (as vosk-server creates its recogniser). */
  #ensureStream(): boolean {
    if (this.#stream !== null) return true;
    const config = this.#config;
    try {
      this.#options.checkStream();
      this.#stream = this.#options.openStream({
        streamId: this.#options.streamId,
        sampleRate: config.sampleRate,
        onPartial: () => {},
        onSegment: () => {},
        onError: (err) => this.#fail(err, err instanceof SttBusyError ? AsrCloseCode.tryAgainLater : AsrCloseCode.internalError),
        replyPerFrame: {
          words: config.words,
          // Partials carry `partial_result` only when the client asked for words itself: vosk-server
          // never sets partial words, and a client without a config gets exactly its replies.
          partialWords: config.words && config.isWordsSet,
          maxAlternatives: config.maxAlternatives,
          phraseList: config.phraseList,
          speakerModelAddress: this.#options.defaults.speakerModelAddress,
          onReply: (json) => this.#onReply(json),
        },
      });
    } catch (err) {
      if (err instanceof SttBusyError) {
        this.#fail(err, AsrCloseCode.tryAgainLater);
        return false;
      }
      if (err instanceof VoxgateError) {
        this.#fail(err, err.code === 'AUDIO_FORMAT_UNSUPPORTED' ? AsrCloseCode.unsupportedData : AsrCloseCode.tryAgainLater);
        return false;
      }
      throw err;
    }
    this.#streamCapacityBytes = this.#stream.freeBytes();
    this.#endStream = this.#options.onStreamOpened();
    return true;
  }

  #onReply(json: string): void {
    // Not #isEnded: eof's final result comes after input ended. A failed stream was aborted, and an
    // aborted stream delivers nothing more.
    if (this.#options.channel.isClosed) return;
    this.#options.channel.sendText(json);
    // A frame was answered: the stream may take more of what waits here.
    this.#pump();
  }

  #canWrite(bytes: number): boolean {
    const stream = this.#stream!;
    return stream.pendingReplies < MAX_FRAMES_IN_STREAM && stream.freeBytes() >= bytes;
  }

  #write(audio: Uint8Array): void {
    const stream = this.#stream!;
    stream.write(audio);
    stream.endFrame();
  }

  #enqueue(item: Queued, bytes: number): void {
    if (this.#queue.length - this.#queueHead >= MAX_QUEUED_MESSAGES || this.#queuedBytes + bytes > MAX_QUEUED_BYTES) {
      return this.#fail(
        new AudioLimitExceededError('the client is too far ahead of the recogniser', {
          details: `at most ${MAX_QUEUED_MESSAGES} messages or ${MAX_QUEUED_BYTES} bytes may wait for their replies`,
        }),
        AsrCloseCode.policyViolation,
      );
    }
    this.#queue.push(item);
    this.#queuedBytes += bytes;
    this.#pump();
  }

  /** Hands waiting frames and controls to the stream, in order, as far as it takes them now. */
  #pump(): void {
    const stream = this.#stream;
    if (stream === null || this.#isEnded) return;
    while (this.#queueHead < this.#queue.length) {
      const item = this.#queue[this.#queueHead]!;
      if (item === 'eof') {
        this.#takeHead(0);
        this.#finish(stream);
        return;
      }
      if (item === 'reset') {
        if (stream.pendingReplies >= MAX_FRAMES_IN_STREAM) return;
        this.#takeHead(0);
        stream.reset();
        continue;
      }
      if (!this.#canWrite(item.byteLength)) {
        // Woken by a reply (pendingReplies) or by buffer room, whichever the stream lacks.
        if (stream.pendingReplies < MAX_FRAMES_IN_STREAM && !this.#isWaitingForRoom) {
          this.#isWaitingForRoom = true;
          void stream.whenWritable(item.byteLength).then(this.#pumpAfterRoom);
        }
        return;
      }
      this.#takeHead(item.byteLength);
      this.#write(item);
    }
    // Compact once everything was handed on (no Array.shift per frame).
    this.#queue = [];
    this.#queueHead = 0;
  }

  #takeHead(bytes: number): void {
    this.#queue[this.#queueHead] = 'reset'; // drop the reference to the frame's bytes
    this.#queueHead += 1;
    this.#queuedBytes -= bytes;
    // A queue that never empties completely (a client always a frame ahead) is compacted now and then,
    // so its array does not grow with the stream's length.
    if (this.#queueHead >= COMPACT_AFTER && this.#queueHead * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }

  #finish(stream: ReplyPerFrameStream): void {
    this.#isEnded = true;
    stream.finish().then(
      () => {
        this.#release();
        this.#options.channel.close(AsrCloseCode.normal, '');
      },
      (err: unknown) => {
        this.#release();
        // The stream failed: onError closed the connection already.
        if (!(err instanceof VoxgateError)) this.#log.error({ err }, 'asr stream finish failed');
      },
    );
  }

  #fail(err: VoxgateError, closeCode: number): void {
    if (this.#options.channel.isClosed) return;
    const wasEnded = this.#isEnded;
    this.#isEnded = true;
    this.#stream?.abort();
    this.#release();
    if (wasEnded && closeCode !== AsrCloseCode.internalError && closeCode !== AsrCloseCode.tryAgainLater) return;
    this.#log.info({ code: err.code, details: err.details, closeCode }, 'asr stream refused or failed');
    this.#options.channel.close(closeCode, `${err.code}: ${err.message}`);
  }

  #release(): void {
    const end = this.#endStream;
    this.#endStream = null;
    end?.();
  }
}

