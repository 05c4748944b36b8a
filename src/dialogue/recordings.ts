import type { Metrics } from '../metrics/metrics.js';
import type { Logger } from 'pino';
import { AudioLimitExceededError, StoreError, toVoxgateError, type VoxgateError } from '../errors.js';
import { errorEvent, transcriptPartial } from '../protocol/server-events.js';
import type { SttEngine, SttStream } from '../stt/engine.js';
import type { AudioFormatDeclaration } from '../stt/audio-format.js';
import { FormattedStream } from '../stt/formatted-stream.js';
import { notRecording } from './dropped-audio.js';
import { joinTranscript } from '../stt/transcript-text.js';
import type { LiveRecording, Session } from './session.js';
import type { SessionManager } from './session-manager.js';

export interface RecordingServiceOptions {
  stt: SttEngine;
  sessions: SessionManager;
  logger: Logger;
  /** AUDIO_BUFFER_MAX_SIZE: audio bytes one recording may receive. */
  maxAudioBytesPerRecording: number;
  metrics?: Metrics;
}

export interface FinishedRecording {
  messageId: string;
  sender: string;
  text: string;
  /** The STT failure during the recording, if any; `text` then holds what was recognised before it. */
  failure: VoxgateError | null;
}

/**
 * Connects a session's recording to an STT stream: opens it, feeds it audio within the limit, reports
 * partial text and keeps every endpoint segment (durably, as it arrives), and finishes it into one text.
 */
export class RecordingService {
  readonly #options: RecordingServiceOptions;
  /** Audio format: the rate of each session's recording, so a stream re-opened after a park keeps it. */
  readonly #sampleRates = new WeakMap<Session, number>();
  /**
   * Sessions whose parked recording could not be reopened (STT busy) and whose client was told so: each
   * later chunk tries again, but a failure is not reported again until a reopen succeeds (the app shows
   * every error as a toast and sends a chunk every second).
   */
  readonly #reopenRefused = new WeakSet<Session>();

  constructor(options: RecordingServiceOptions) {
    this.#options = options;
  }

  /** open() then begin(): a recording with a new stream, for callers with nothing to do in between. */
  start(session: Session, sender: string, format: AudioFormatDeclaration | null = null): LiveRecording {
    return this.begin(session, this.open(session, sender, format));
  }

  /**
   * message_start, step 1: opens an STT stream for the session's next recording (throws STT_SERVICE_BUSY /
   * STT_SERVICE_ERROR, or AUDIO_FORMAT_UNSUPPORTED for a declared `format`/`sample_rate`/`channels` it
   * cannot decode). Nothing about the session changes yet, so a refusal leaves it exactly as it was.
   */
  open(session: Session, sender: string, format: AudioFormatDeclaration | null = null): OpenedStream {
    this.#sampleRates.delete(session);
    return this.#openStream(session, session.nextMessageId('recording'), sender, format);
  }

  /** message_start, step 2: makes an opened stream the session's recording (store first; aborts it on failure). */
  begin(session: Session, opened: OpenedStream): LiveRecording {
    return this.#begin(session, opened, []);
  }

  /**
   * A session whose durable state says "recording" but that has no stream in this process (it was
   * loaded after a restart): open a new stream that continues the same message.
   */
  reopen(session: Session): LiveRecording | null {
    const stored = session.storedRecording;
    if (session.liveRecording || !stored) return session.liveRecording;
    const sampleRate = this.#sampleRates.get(session);
    try {
      const recording = this.#open(session, stored.messageId, stored.sender, stored.segments, sampleRate === undefined ? null : { sample_rate: sampleRate });
      this.#reopenRefused.delete(session);
      return recording;
    } catch (err) {
      this.#reopenRefused.add(session);
      throw err;
    }
  }

  /**
   * Appends audio to the session's recording (`format`: the audio_stream chunk's own declaration). Throws
   * NOT_RECORDING, or AUDIO_LIMIT_EXCEEDED / AUDIO_FORMAT_UNSUPPORTED once per recording.
   */
  appendAudio(session: Session, pcm: Uint8Array, format: AudioFormatDeclaration | null = null): void {
    const recording = session.liveRecording ?? this.#reopenForAudio(session);
    if (recording === null) return;
    if (recording.audioBytes + pcm.byteLength > this.#options.maxAudioBytesPerRecording) {
      if (recording.hasReportedAudioLimit) return;
      recording.hasReportedAudioLimit = true;
      throw new AudioLimitExceededError(
        `recording ${recording.messageId} reached the audio limit of ${this.#options.maxAudioBytesPerRecording} bytes; later audio is discarded until message_end`,
        { details: `max_audio_bytes: ${this.#options.maxAudioBytesPerRecording}` },
      );
    }
    recording.audioBytes += pcm.byteLength;
    this.#options.metrics?.audioBytes.inc(pcm.byteLength);
    if (recording.failure !== null) return;
    // Audio format: every stream #openStream makes is a FormattedStream (it honours the chunk's declaration).
    // The rate is known once the stream took the chunk (a first chunk may declare it, or carry a WAV header).
    let sampleRate = this.#options.stt.sampleRate;
    if (recording.stream instanceof FormattedStream) {
      recording.stream.write(pcm, format);
      sampleRate = recording.stream.sampleRate;
    } else {
      recording.stream.write(pcm);
    }
    this.#options.metrics?.audioSeconds.inc(pcm.byteLength / 2 / sampleRate);
  }

  /** message_end: closes the stream and joins every segment with the final text. */
  async finish(session: Session): Promise<FinishedRecording> {
    const stored = session.storedRecording;
    const recording = session.detachRecording();
    if (!recording) {
      if (!stored) throw notRecording(session.id);
      // Loaded after a restart and no stream could be reopened: the stored segments are the message.
      return { messageId: stored.messageId, sender: stored.sender, text: joinTranscript(stored.segments), failure: null };
    }
    let tail = '';
    if (recording.failure === null) {
      try {
        tail = await recording.stream.finish();
      } catch (err) {
        recording.failure = toVoxgateError(err);
      }
    }
    return {
      messageId: recording.messageId,
      sender: recording.sender,
      text: joinTranscript([...recording.segments, tail]),
      failure: recording.failure === null ? null : toVoxgateError(recording.failure),
    };
  }

  /**
   * Releases the recogniser of a recording nobody is sending to (its connection left): what the stream
   * still held is recognised and stored as a segment, and the recording stays open in the store, so
   * session_resume continues it exactly like after a restart. No-op if the recording is gone.
   */
  async park(session: Session): Promise<void> {
    const recording = session.detachRecording();
    if (!recording) return;
    if (recording.stream instanceof FormattedStream) this.#sampleRates.set(session, recording.stream.sampleRate);
    let tail = '';
    if (recording.failure === null) {
      try {
        tail = await recording.stream.finish();
      } catch (err) {
        session.log.warn({ err: toVoxgateError(err), messageId: recording.messageId }, 'could not finish a parked recording');
      }
    } else {
      recording.stream.abort();
    }
    if (tail.trim() !== '') {
      try {
        session.addRecordingSegment(recording, tail);
      } catch (err) {
        session.log.error({ err: toVoxgateError(err), messageId: recording.messageId, segment: tail }, 'could not store a parked recording segment');
      }
    }
    session.log.info({ messageId: recording.messageId }, 'recording parked: no connection; its recogniser was released');
  }

  /** The parked recording, reopened; null when that failed again after the client was told (the chunk is dropped). */
  #reopenForAudio(session: Session): LiveRecording | null {
    const wasRefused = this.#reopenRefused.has(session);
    let recording: LiveRecording | null;
    try {
      recording = this.reopen(session);
    } catch (err) {
      if (!wasRefused) throw err;
      session.log.debug({ err: toVoxgateError(err) }, 'audio dropped: the parked recording still cannot be reopened');
      return null;
    }
    if (!recording) throw notRecording(session.id);
    return recording;
  }

  /** transcript_partial with everything recognised so far in this recording, when it changed. */
  #sendTranscript(session: Session, recording: LiveRecording, text: string): void {
    if (text === recording.lastSentText) return;
    recording.lastSentText = text;
    this.#options.sessions.broadcast(session, transcriptPartial(session.id, recording.messageId, text));
  }

  #open(session: Session, messageId: string, sender: string, carried: readonly string[], format: AudioFormatDeclaration | null): LiveRecording {
    return this.#begin(session, this.#openStream(session, messageId, sender, format), carried);
  }

  #begin(session: Session, opened: OpenedStream, carried: readonly string[]): LiveRecording {
    try {
      opened.holder.recording = session.beginRecording(opened.messageId, opened.sender, opened.stream, carried);
    } catch (err) {
      opened.stream.abort();
      throw err;
    }
    return opened.holder.recording;
  }

  #openStream(session: Session, messageId: string, sender: string, format: AudioFormatDeclaration | null): OpenedStream {
    const { sessions } = this.#options;
    // The callbacks are made once per stream and find their recording through this holder.
    const holder: { recording: LiveRecording | null } = { recording: null };
    const stream = FormattedStream.open(this.#options.stt, {
      streamId: `${session.id}/${messageId}`,
      // Partial texts only feed transcript_partial, an extension event: the recogniser need not render
      // them while no attached connection asked for it (the app never does).
      wantsPartials: () => sessions.anyWants(session, 'transcript_partial'),
      onPartial: (text) => {
        const recording = holder.recording;
        if (!recording || recording.partial === text) return;
        recording.partial = text;
        this.#sendTranscript(session, recording, joinTranscript([...recording.segments, text]));
      },
      onSegment: (text) => {
        const recording = holder.recording;
        if (!recording) return;
        try {
          session.addRecordingSegment(recording, text);
        } catch (err) {
          const error = err instanceof StoreError ? err : toVoxgateError(err);
          session.log.error({ err: error, messageId, segment: text }, 'could not store recognised segment');
          sessions.broadcast(session, errorEvent(session.id, error));
        }
        this.#sendTranscript(session, recording, joinTranscript(recording.segments));
      },
      onError: (err) => {
        const recording = holder.recording;
        if (recording) recording.failure = err;
        session.log.error({ err, code: err.code, messageId }, 'speech recognition stream failed');
        sessions.broadcast(session, errorEvent(session.id, err));
      },
    }, format);
    return { messageId, sender, stream, holder };
  }
}

/** An STT stream opened for a recording that has not begun yet (RecordingService.open). */
export interface OpenedStream {
  readonly messageId: string;
  readonly sender: string;
  readonly stream: SttStream;
  readonly holder: { recording: LiveRecording | null };
}
