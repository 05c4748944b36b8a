// One recording's audio as the client declared it. The rate can be declared at message_start (opening
// the engine stream at that rate), on audio_stream (the app sends `format`, `sample_rate`, `channels`
// with every chunk), or by a WAV header at the start of the audio; binary frames carry no declaration
// and use the recording's rate. Until the first audio byte reaches the engine a new rate re-opens the
// engine stream at that rate (admission runs again: a higher rate costs more); after it, a different
// rate would turn the rest of the recording into wrong text, so such a chunk is refused.
//
// A refused chunk is dropped. The first refusal of a recording throws AudioFormatError (the client gets
// one error event); later ones are dropped silently (counted in refusedBytes), so a client that keeps
// sending the wrong format does not get an error toast per chunk.
import { AudioFormatError, toVoxgateError } from '../errors.js';
import { declaredSampleRate, parseWavHeader, type AudioFormatDeclaration } from './audio-format.js';
import type { SttEngine, SttStream, SttStreamOptions } from './engine.js';

export class FormattedStream implements SttStream {
  readonly #engine: SttEngine;
  readonly #options: SttStreamOptions;
  #inner: SttStream;
  #sampleRate: number;
  /** Audio reached the engine: the rate is fixed from now on. */
  #hasAudio = false;
  #hasReportedRefusal = false;
  #receivedBytes = 0;
  #refusedBytes = 0;

  /**
   * Opens the engine stream at the declared rate (default: the engine's). Throws AudioFormatError for a
   * declaration voxgate cannot decode, and whatever the engine's openStream throws (STT_SERVICE_BUSY...).
   */
  static open(engine: SttEngine, options: Omit<SttStreamOptions, 'sampleRate'>, declaration: AudioFormatDeclaration | null): FormattedStream {
    const sampleRate = (declaration === null ? null : declaredSampleRate(declaration)) ?? engine.sampleRate;
    return new FormattedStream(engine, { ...options, sampleRate });
  }

  private constructor(engine: SttEngine, options: SttStreamOptions & { sampleRate: number }) {
    this.#engine = engine;
    this.#options = options;
    this.#sampleRate = options.sampleRate;
    this.#inner = engine.openStream(options);
  }

  /** The rate the recording's audio is decoded at (Hz). */
  get sampleRate(): number {
    return this.#sampleRate;
  }

  /** Bytes accepted (and passed on, WAV header included). */
  get receivedBytes(): number {
    return this.#receivedBytes;
  }

  /** Bytes dropped because their format was refused. */
  get refusedBytes(): number {
    return this.#refusedBytes;
  }

  /**
   * Appends audio, with the chunk's own declaration if it has one. Throws AudioFormatError (once per
   * recording; the chunk is dropped), or the engine's error if re-opening at a new rate fails.
   */
  write(pcm: Uint8Array, declaration: AudioFormatDeclaration | null = null): void {
    let audio = pcm;
    let rate = this.#sampleRate;
    try {
      const declared = declaration === null ? null : declaredSampleRate(declaration);
      if (declared !== null) rate = declared;
      if (!this.#hasAudio) {
        const header = parseWavHeader(audio);
        if (header !== null) {
          if (declared !== null && declared !== header.sampleRateHz) throw rateConflict(`the chunk declares ${declared} Hz but its WAV header says ${header.sampleRateHz} Hz`);
          rate = header.sampleRateHz;
          audio = audio.subarray(header.dataOffset);
        }
      }
      if (rate !== this.#sampleRate) {
        if (this.#hasAudio) throw rateConflict(`the sample rate changed from ${this.#sampleRate} Hz to ${rate} Hz during the recording`);
        this.#reopen(rate);
      }
    } catch (err) {
      this.#refuse(pcm.byteLength, toVoxgateError(err));
      return;
    }
    this.#receivedBytes += pcm.byteLength;
    if (audio.byteLength === 0) return;
    this.#hasAudio = true;
    this.#inner.write(audio);
  }

  finish(): Promise<string> {
    return this.#inner.finish();
  }

  abort(): void {
    this.#inner.abort();
  }

  /** Opens the engine stream again at `sampleRate` (no audio was written yet); the old one is kept if that fails. */
  #reopen(sampleRate: number): void {
    const next = this.#engine.openStream({ ...this.#options, sampleRate });
    this.#inner.abort();
    this.#inner = next;
    this.#sampleRate = sampleRate;
  }

  #refuse(bytes: number, err: Error): void {
    this.#refusedBytes += bytes;
    if (this.#hasReportedRefusal) return;
    this.#hasReportedRefusal = true;
    throw err;
  }
}

function rateConflict(message: string): AudioFormatError {
  return new AudioFormatError(message, { details: 'sample_rate: one rate per recording, declared at message_start or before its first audio' });
}
