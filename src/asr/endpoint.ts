// The /asr endpoint's part of the server that is not per connection: which paths it answers, which
// model names it accepts, whether a stream can be had at all, and a session per accepted connection.
// The transport (transport/ws-handler.ts) runs the upgrade checks it shares with the conversation
// endpoint (origin, credentials, quotas, connection limit) and hands each /asr socket's frames here.
import type { Quotas, QuotaSubject } from '../quotas/quotas.js';
import type { ReplyPerFrameOptions, ReplyPerFrameStream, SttStreamOptions } from '../stt/engine.js';
import { AsrSession, type AsrChannel, type AsrDefaults } from './session.js';

/** The endpoint's paths: `/asr` and `/asr/<model>/...` (uWS pattern), and `/` when ASR_ROOT_PATH is on. */
export function asrPaths(isRootPathOn: boolean): string[] {
  return isRootPathOn ? ['/asr', '/asr/*', '/'] : ['/asr', '/asr/*'];
}

export interface AsrEndpointOptions {
  defaults: AsrDefaults;
  /** Names a client may put in the path or a config's `model`; empty: any name (vosk-server ignores the path). */
  modelNames: readonly string[];
  /** Opens a reply-per-frame stream, or null when the engine cannot (the mock engine): every upgrade gets 503. */
  openStream: ((options: SttStreamOptions & { replyPerFrame: ReplyPerFrameOptions }) => ReplyPerFrameStream) | null;
  /** Whether the engine would admit one more stream now (a cheap check), or null when it cannot tell. */
  canAdmit: (() => boolean) | null;
  quotas: Quotas;
}

export type AsrUpgradeRefusal = { status: '404 Not Found' | '503 Service Unavailable'; reason: string; retryAfterSeconds: number | null };

/** Seconds a client refused for capacity is told to wait (streams last seconds to minutes). */
const BUSY_RETRY_AFTER_SECONDS = 5;

export class AsrEndpoint {
  readonly #options: AsrEndpointOptions;
  #nextStreamNumber = 0;

  constructor(options: AsrEndpointOptions) {
    this.#options = options;
  }

  /** The model a path names (`/asr/en/` -> `en`), or null for `/asr` and `/`. */
  static modelInPath(url: string): string | null {
    if (!url.startsWith('/asr/')) return null;
    const name = url.slice('/asr/'.length).split('/')[0] ?? '';
    return name === '' ? null : name;
  }

  isKnownModel(name: string): boolean {
    const names = this.#options.modelNames;
    return names.length === 0 || names.includes(name);
  }

  /** Checked at the upgrade, after the shared checks: null to accept. */
  refusal(url: string): AsrUpgradeRefusal | null {
    if (this.#options.openStream === null) {
      return { status: '503 Service Unavailable', reason: 'speech recognition needs the vosk engine (STT_ENGINE)', retryAfterSeconds: null };
    }
    const model = AsrEndpoint.modelInPath(url);
    if (model !== null && !this.isKnownModel(model)) {
      return { status: '404 Not Found', reason: `no model named ${JSON.stringify(model.slice(0, 64))} (ASR_MODEL_NAMES)`, retryAfterSeconds: null };
    }
    if (this.#options.canAdmit !== null && !this.#options.canAdmit()) {
      return { status: '503 Service Unavailable', reason: 'speech recognition is at capacity', retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS };
    }
    return null;
  }

  /** A session for an accepted /asr connection. */
  open(channel: AsrChannel, subject: QuotaSubject, connectionId: string): AsrSession {
    const openStream = this.#options.openStream;
    if (openStream === null) throw new TypeError('asr connection accepted without a reply-per-frame engine');
    const quotas = this.#options.quotas;
    return new AsrSession({
      streamId: `asr-${connectionId}-${this.#nextStreamNumber++}`,
      channel,
      defaults: this.#options.defaults,
      openStream,
      isKnownModel: (name) => this.isKnownModel(name),
      // An /asr stream is a recording for the quotas (QUOTA_RECORDINGS).
      checkStream: () => quotas.assertRecording(subject),
      onStreamOpened: () => quotas.countRecording(subject),
    });
  }
}
