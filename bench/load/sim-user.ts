// One simulated app user: the phone app's loop against a real voxgate over a real WebSocket.
//   conversation_start -> (1 s) manual_generate -> llm_response, then per turn:
//   message_start -> tone audio in real time -> message_end -> message_recorded (transcript checked)
//   -> manual_generate -> llm_response -> user_selected_response -> message_recorded(null)
//   -> opinion_prediction_response -> think pause.
// Every wait has a deadline; any error event, timeout or disconnect ends the session, which is counted,
// and the user starts over on a new connection a second later.
import { setTimeout as delay } from 'node:timers/promises';

import WebSocket from 'ws';

import type { AudioPacer, UtteranceCache, WordSource } from './audio.js';
import { METRICS, type MetricName } from './messages.js';

export interface ServerEvent {
  type: string;
  data: Record<string, unknown>;
}

export interface UserContext {
  wsUrl: string;
  audio: 'base64' | 'binary';
  thinkMs: number;
  timeoutMs: number;
  autoSuggest: boolean;
  responseCount: number;
  pacer: AudioPacer;
  utterances: UtteranceCache;
  stopSignal: AbortSignal;
  sample(metric: MetricName, startedAtEpochMs: number, durationMs: number): void;
  failure(kind: string): void;
  wrongTranscript(expected: string, got: string): void;
  turnCompleted(): void;
}

const RESTART_DELAY_MS = 1000;
const FIRST_GENERATE_DELAY_MS = 1000; // the app sends manual_generate 1 s after session_created
const LEFTOVER_MAX_EVENTS = 10_000;

/** Ends the current session; `kind` is recorded unless it was recorded when it happened (null). */
class SessionFailed extends Error {
  constructor(readonly kind: string | null) {
    super(kind ?? 'session failed');
  }
}

class Stopped extends Error {}

interface Waiter {
  phase: string;
  onEvent: (event: ServerEvent, atMs: number) => boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export const epochNow = (): number => performance.timeOrigin + performance.now();
const metricIndex = new Map(METRICS.map((name, index) => [name, index]));
export { metricIndex };

export class SimUser {
  readonly #context: UserContext;
  readonly #words: WordSource;
  #socket: WebSocket | null = null;
  #sessionId = '';
  #waiter: Waiter | null = null;
  /** Events that arrived while nothing waited (several frames can arrive in one read). */
  #leftovers: Array<{ event: ServerEvent; atMs: number }> = [];
  /** An error event or disconnect happened while nothing waited: the next wait fails. */
  #hasFailed = false;
  #isClosing = false;

  constructor(context: UserContext, words: WordSource) {
    this.#context = context;
    this.#words = words;
  }

  /** Runs sessions until the stop signal; never rejects. */
  async run(): Promise<void> {
    const { stopSignal } = this.#context;
    while (!stopSignal.aborted) {
      try {
        await this.#session();
      } catch (err) {
        if (err instanceof SessionFailed) {
          if (err.kind !== null) this.#context.failure(err.kind);
        } else if (!(err instanceof Stopped)) {
          this.#context.failure(`internal:${(err as Error).message}`);
        }
      }
      this.#close();
      if (stopSignal.aborted) break;
      try {
        await delay(RESTART_DELAY_MS, undefined, { signal: stopSignal });
      } catch {
        break;
      }
    }
    this.#close();
  }

  async #session(): Promise<void> {
    await this.#connect();
    this.#send({ type: 'conversation_start', data: { response_count: this.#context.responseCount, scenario_description: 'load test' } });
    await this.#wait('session_created', (event) => {
      if (event.type !== 'session_created') return false;
      this.#sessionId = String(event.data.session_id);
      return true;
    });
    await this.#pause(FIRST_GENERATE_DELAY_MS);
    await this.#generate(0);
    for (;;) {
      await this.#turn();
      this.#context.turnCompleted();
      await this.#pause(this.#context.thinkMs);
    }
  }

  async #turn(): Promise<void> {
    const context = this.#context;
    const sessionId = this.#sessionId;
    const utterance = context.utterances.get(this.#words.next());
    this.#send({ type: 'message_start', data: { session_id: sessionId, sender: 'other' } });
    await this.#wait('message_start', (event) => event.type === 'status_update' && event.data.status === 'recording_message');
    await context.pacer.play(this.#socket!, sessionId, utterance, context.audio);
    this.#throwIfStopped();
    if (this.#hasFailed) throw new SessionFailed(null);

    const endedAt = epochNow();
    this.#send({ type: 'message_end', data: { session_id: sessionId } });
    let transcript: unknown = null;
    await this.#wait('message_end', (event) => {
      if (event.type !== 'message_recorded' || !String(event.data.message_id).startsWith('msg_')) return false;
      transcript = event.data.message_content;
      return true;
    });
    context.sample('stt_ms', endedAt, epochNow() - endedAt);
    if (transcript !== utterance.expectedText) {
      context.failure('wrong_transcript');
      context.wrongTranscript(utterance.expectedText, String(transcript));
    }

    // With AUTO_SUGGEST the server already started a generation (its generating_response is the first).
    const suggestions = await this.#generate(context.autoSuggest ? 1 : 0);

    const selectedAt = epochNow();
    this.#send({ type: 'user_selected_response', data: { session_id: sessionId, selected_content: suggestions[0] ?? '好的', sender: 'me' } });
    await this.#wait('user_selected_response', (event) =>
      event.type === 'message_recorded' && event.data.message_content === null && String(event.data.message_id).startsWith('usr_'));
    await this.#wait('opinion_prediction', (event) => event.type === 'opinion_prediction_response');
    context.sample('prediction_ms', selectedAt, epochNow() - selectedAt);
  }

  /** manual_generate; `earlierGenerations` generating_response events belong to work it replaces. */
  async #generate(earlierGenerations: number): Promise<string[]> {
    const sentAt = epochNow();
    const sentAtPerf = performance.now();
    this.#send({ type: 'manual_generate', data: { session_id: this.#sessionId } });
    let statuses = 0;
    let requestId: unknown = null;
    let suggestions: string[] = [];
    await this.#wait('manual_generate', (event, atMs) => {
      if (event.type === 'status_update' && event.data.status === 'generating_response') {
        statuses++;
        return false;
      }
      if (statuses <= earlierGenerations) return false;
      if (event.type === 'llm_response_delta') {
        if (requestId === null) {
          requestId = event.data.request_id;
          this.#context.sample('first_delta_ms', sentAt, atMs - sentAtPerf);
        }
        return false;
      }
      if (event.type !== 'llm_response' || (requestId !== null && event.data.request_id !== requestId)) return false;
      suggestions = event.data.suggestions as string[];
      return true;
    });
    this.#context.sample('llm_response_ms', sentAt, epochNow() - sentAt);
    return suggestions;
  }

  #connect(): Promise<void> {
    this.#hasFailed = false;
    this.#isClosing = false;
    this.#leftovers = [];
    this.#sessionId = '';
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.#context.wsUrl, { perMessageDeflate: false, handshakeTimeout: this.#context.timeoutMs });
      this.#socket = socket;
      let isOpen = false;
      socket.on('open', () => {
        isOpen = true;
        resolve();
      });
      socket.on('error', () => {
        if (!isOpen) reject(new SessionFailed('connect_failed'));
      });
      socket.on('unexpected-response', (_request, response) => {
        reject(new SessionFailed(`connect_failed:http_${response.statusCode}`));
        socket.terminate();
      });
      socket.on('message', (data, isBinary) => {
        if (!isBinary) this.#onEvent(JSON.parse(data.toString()) as ServerEvent, performance.now());
      });
      socket.on('close', () => {
        if (!isOpen || this.#isClosing || this.#context.stopSignal.aborted) return;
        this.#context.failure('disconnect');
        this.#fail();
      });
    });
  }

  #onEvent(event: ServerEvent, atMs: number): void {
    if (event.type === 'error') {
      this.#context.failure(`error:${String(event.data.error_code)}`);
      this.#fail();
      return;
    }
    const waiter = this.#waiter;
    if (waiter === null) {
      if (this.#leftovers.length < LEFTOVER_MAX_EVENTS) this.#leftovers.push({ event, atMs });
      return;
    }
    if (waiter.onEvent(event, atMs)) this.#settle(waiter).resolve();
  }

  #fail(): void {
    this.#hasFailed = true;
    const waiter = this.#waiter;
    if (waiter !== null) this.#settle(waiter).reject(new SessionFailed(null));
  }

  #settle(waiter: Waiter): Waiter {
    clearTimeout(waiter.timer);
    this.#context.stopSignal.removeEventListener('abort', this.#onStop);
    this.#waiter = null;
    return waiter;
  }

  readonly #onStop = (): void => {
    const waiter = this.#waiter;
    if (waiter !== null) this.#settle(waiter).reject(new Stopped());
  };

  /** Waits for the event `onEvent` accepts, looking first at events that arrived since the last wait. */
  #wait(phase: string, onEvent: (event: ServerEvent, atMs: number) => boolean): Promise<void> {
    this.#throwIfStopped();
    if (this.#hasFailed) return Promise.reject(new SessionFailed(null));
    const leftovers = this.#leftovers;
    this.#leftovers = [];
    for (let i = 0; i < leftovers.length; i++) {
      const { event, atMs } = leftovers[i]!;
      if (onEvent(event, atMs)) {
        this.#leftovers = leftovers.slice(i + 1);
        return Promise.resolve();
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#waiter === waiter) this.#settle(waiter).reject(new SessionFailed(`timeout:${phase}`));
      }, this.#context.timeoutMs);
      const waiter: Waiter = { phase, onEvent, resolve, reject, timer };
      this.#waiter = waiter;
      this.#context.stopSignal.addEventListener('abort', this.#onStop);
    });
  }

  async #pause(ms: number): Promise<void> {
    try {
      await delay(ms, undefined, { signal: this.#context.stopSignal });
    } catch {
      throw new Stopped();
    }
    if (this.#hasFailed) throw new SessionFailed(null);
  }

  #throwIfStopped(): void {
    if (this.#context.stopSignal.aborted) throw new Stopped();
  }

  #send(event: { type: string; data: Record<string, unknown> }): void {
    const socket = this.#socket;
    if (socket === null || socket.readyState !== WebSocket.OPEN) throw new SessionFailed(this.#hasFailed ? null : 'disconnect');
    socket.send(JSON.stringify(event));
  }

  #close(): void {
    this.#isClosing = true;
    const socket = this.#socket;
    this.#socket = null;
    if (socket !== null && socket.readyState !== WebSocket.CLOSED) socket.terminate();
  }
}
