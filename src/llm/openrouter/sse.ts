import { createParser, type EventSourceMessage, type EventSourceParser, type ParseError } from 'eventsource-parser';
import { LlmServiceError } from '../../errors.js';

// Hoisted so decoding a chunk allocates no options object.
const STREAM_DECODE = { stream: true } as const;
// One SSE event larger than this is not a chat completion chunk; refuse it instead of buffering forever.
const MAX_EVENT_BYTES = 1024 * 1024;

/**
 * Turns response body bytes into SSE `data` payloads. Bytes are decoded with a streaming TextDecoder, so
 * a UTF-8 character split across network chunks comes out whole. Comment lines
 * (`: OPENROUTER PROCESSING` keep-alives) never reach `onData`.
 */
export class SseDecoder {
  readonly #decoder = new TextDecoder('utf-8');
  readonly #parser: EventSourceParser;
  readonly #onData: (data: string) => void;
  #parseError: ParseError | null = null;

  constructor(onData: (data: string) => void) {
    this.#onData = onData;
    this.#parser = createParser({
      onEvent: this.#onEvent,
      onError: this.#onError,
      maxBufferSize: MAX_EVENT_BYTES,
    });
  }

  /** Feeds the next network chunk; `onData` runs synchronously for every event it completes. */
  push(bytes: Uint8Array): void {
    this.#parser.feed(this.#decoder.decode(bytes, STREAM_DECODE));
    if (this.#parseError !== null) {
      throw new LlmServiceError('malformed event stream from openrouter', {
        details: this.#parseError.type,
        cause: this.#parseError,
      });
    }
  }

  /** Flushes a trailing partial UTF-8 sequence at the end of the body. */
  end(): void {
    const rest = this.#decoder.decode();
    if (rest.length > 0) this.#parser.feed(rest);
  }

  readonly #onEvent = (event: EventSourceMessage): void => {
    this.#onData(event.data);
  };

  readonly #onError = (err: ParseError): void => {
    // 'unknown-field' lines are harmless (SSE says ignore them); anything else breaks framing.
    if (err.type !== 'unknown-field') this.#parseError = err;
  };
}
