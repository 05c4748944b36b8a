// One benchmark speaker: a WebSocket connection with one conversation that records utterances through
// the real protocol (message_start, binary PCM frames, message_end) and reports how each one went.
import WebSocket from 'ws';

import { TONE_LEAD_MS, TONE_WORD_MS } from './stt-model.js';

const BYTES_PER_MS = 32;

export type RecordingOutcome = 'ok' | 'wrong' | 'busy' | 'failed' | 'timeout';

export interface RecordingResult {
  outcome: RecordingOutcome;
  /** error_code of the first error event of the recording (message_start refusal or stream failure). */
  errorCode: string | null;
  /** The error's `details` (for STT_SERVICE_BUSY: why admission refused). */
  errorDetails?: string | null;
  /** message_end -> message_recorded (ms), when it came. */
  latencyMs: number | null;
  /** PCM bytes sent. */
  audioBytes: number;
}

/**
 * How fast audio goes out. `realtime`: chunk i leaves when its audio has been spoken, at
 * start + (i + 1) * chunkMs. `ahead`: as fast as the server shows progress, never more than `aheadMs`
 * past the audio that transcript_partial proves decoded (so the 4 s per-stream buffer never overflows).
 */
export type Pacing = { kind: 'realtime' } | { kind: 'ahead'; aheadMs: number };

export interface RecordOptions {
  pcm: Buffer;
  expectedText: string;
  chunkMs: number;
  pacing: Pacing;
  /** How long message_recorded may take after message_end. */
  timeoutMs?: number;
}

interface ServerEvent {
  type: string;
  data: Record<string, unknown>;
}

type Waiter = (event: ServerEvent) => boolean;

export class SttBenchClient {
  readonly #socket: WebSocket;
  #sessionId = '';
  #waiter: Waiter | null = null;
  #wake: (() => void) | null = null;
  /** Words in the latest transcript_partial of the current recording. */
  #partialWords = 0;
  #recordingError: string | null = null;
  #closedReason: string | null = null;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) this.#onEvent(JSON.parse(data.toString('utf8')) as ServerEvent);
    });
    socket.on('close', (code) => {
      this.#closedReason = `connection closed (${code})`;
      this.#wake?.();
    });
  }

  static connect(url: string): Promise<SttBenchClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { perMessageDeflate: false });
      socket.once('open', () => resolve(new SttBenchClient(socket)));
      socket.once('error', reject);
    });
  }

  async startConversation(): Promise<void> {
    this.#send({ type: 'conversation_start', data: { response_count: 1 } });
    const created = await this.#waitFor((event) => event.type === 'session_created', 30_000);
    this.#sessionId = String(created?.data.session_id ?? '');
  }

  async record(options: RecordOptions): Promise<RecordingResult> {
    this.#partialWords = 0;
    this.#recordingError = null;
    this.#send({ type: 'message_start', data: { session_id: this.#sessionId, sender: 'bench' } });
    const started = await this.#waitFor(
      (event) => (event.type === 'status_update' && event.data.status === 'recording_message') || event.type === 'error',
      30_000,
    );
    if (started === null) return { outcome: 'timeout', errorCode: null, latencyMs: null, audioBytes: 0 };
    if (started.type === 'error') {
      const code = String(started.data.error_code);
      const details = typeof started.data.details === 'string' ? started.data.details : null;
      return { outcome: code === 'STT_SERVICE_BUSY' ? 'busy' : 'failed', errorCode: code, errorDetails: details, latencyMs: null, audioBytes: 0 };
    }
    // An error after recording_message belongs to the stream (e.g. its buffer overflowed).
    this.#recordingError = null;

    const chunkBytes = options.chunkMs * BYTES_PER_MS;
    const { pcm } = options;
    const startedAt = performance.now();
    for (let offset = 0, index = 0; offset < pcm.length; offset += chunkBytes, index++) {
      if (this.#closedReason !== null) break;
      if (options.pacing.kind === 'realtime') {
        const dueMs = startedAt + (index + 1) * options.chunkMs - performance.now();
        if (dueMs > 0) await new Promise((resolve) => setTimeout(resolve, dueMs));
      } else {
        const limitBytes = (this.#decodedMs() + options.pacing.aheadMs) * BYTES_PER_MS;
        if (offset + chunkBytes > limitBytes) {
          const aheadMs = options.pacing.aheadMs;
          // Progress = a transcript_partial proving more audio decoded.
          await this.#waitFor(() => (offset + chunkBytes) <= (this.#decodedMs() + aheadMs) * BYTES_PER_MS, 30_000);
        }
      }
      this.#socket.send(pcm.subarray(offset, offset + chunkBytes), { binary: true });
    }
    const endedAt = performance.now();
    this.#send({ type: 'message_end', data: { session_id: this.#sessionId } });
    const recorded = await this.#waitFor((event) => event.type === 'message_recorded', options.timeoutMs ?? 30_000);
    const latencyMs = recorded === null ? null : performance.now() - endedAt;
    const errorCode = this.#recordingError;
    let outcome: RecordingOutcome;
    if (recorded === null) outcome = 'timeout';
    else if (errorCode !== null) outcome = 'failed';
    else outcome = recorded.data.message_content === options.expectedText ? 'ok' : 'wrong';
    return { outcome, errorCode, latencyMs, audioBytes: pcm.length };
  }

  close(): void {
    this.#socket.close();
  }

  /** Audio the recogniser has certainly decoded, from the words in the latest partial. */
  #decodedMs(): number {
    return this.#partialWords === 0 ? 0 : TONE_LEAD_MS + (this.#partialWords - 1) * TONE_WORD_MS;
  }

  #send(event: { type: string; data: Record<string, unknown> }): void {
    this.#socket.send(JSON.stringify(event));
  }

  #onEvent(event: ServerEvent): void {
    if (event.type === 'transcript_partial') {
      const text = String(event.data.text ?? '');
      this.#partialWords = text === '' ? 0 : text.split(' ').length;
    } else if (event.type === 'error' && this.#recordingError === null) {
      this.#recordingError = String(event.data.error_code);
    }
    if (this.#waiter !== null && this.#waiter(event)) this.#wake?.();
  }

  /** The first event from now on accepted by `accept` (null on timeout or close). */
  #waitFor(accept: Waiter, timeoutMs: number): Promise<ServerEvent | null> {
    return new Promise((resolve) => {
      let matched: ServerEvent | null = null;
      const finish = (): void => {
        clearTimeout(timer);
        this.#waiter = null;
        this.#wake = null;
        resolve(matched);
      };
      const timer = setTimeout(finish, timeoutMs);
      this.#waiter = (event) => {
        if (!accept(event)) return false;
        matched = event;
        return true;
      };
      this.#wake = finish;
      if (this.#closedReason !== null) finish();
    });
  }
}
