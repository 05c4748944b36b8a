import { AudioFormatError, SttServiceError } from '../errors.js';
import { isSupportedSampleRate, MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ, type SttEngine, type SttHealth, type SttStream, type SttStreamOptions } from './engine.js';

export interface MockSttEngineOptions {
  sampleRate: number;
  /** Why the mock runs (shown in health), e.g. "STT_ENGINE=mock" or "no Vosk model at model/...". */
  reason: string;
}

/**
 * The offline stand-in: it recognises nothing and says so. Its transcript states how much audio it
 * received, so the whole protocol can be exercised (and audio accounting checked) without a model.
 */
export class MockSttEngine implements SttEngine {
  readonly name = 'mock' as const;
  readonly #options: MockSttEngineOptions;
  readonly #streams = new Set<MockSttStream>();
  #isClosed = false;

  constructor(options: MockSttEngineOptions) {
    this.#options = options;
  }

  get sampleRate(): number {
    return this.#options.sampleRate;
  }

  openStream(options: SttStreamOptions): SttStream {
    if (this.#isClosed) throw new SttServiceError('speech recognition is shutting down');
    const sampleRate = options.sampleRate ?? this.#options.sampleRate;
    // The same refusal as the real engine, so the protocol behaves alike without a model.
    if (!isSupportedSampleRate(sampleRate)) {
      throw new AudioFormatError(`sample rate ${sampleRate} Hz is not supported`, {
        details: `sample_rate: expected an integer ${MIN_SAMPLE_RATE_HZ}..${MAX_SAMPLE_RATE_HZ}`,
      });
    }
    const stream = new MockSttStream(options, sampleRate, () => this.#streams.delete(stream));
    this.#streams.add(stream);
    return stream;
  }

  health(): SttHealth {
    return {
      engine: 'mock',
      status: 'degraded',
      reason: `mock engine (no speech recognition): ${this.#options.reason}`,
      modelPath: null,
      workers: 0,
      activeStreams: this.#streams.size,
      queueDepth: 0,
      streamLimit: null,
    };
  }

  async close(): Promise<void> {
    this.#isClosed = true;
    for (const stream of this.#streams) stream.abort();
  }
}

/** `[mock transcript: 2.50 s of audio, 80000 bytes]`: the text every mock recording ends with. */
export function mockTranscript(bytes: number, sampleRate: number): string {
  return `[mock transcript: ${(bytes / 2 / sampleRate).toFixed(2)} s of audio, ${bytes} bytes]`;
}

class MockSttStream implements SttStream {
  readonly #options: SttStreamOptions;
  readonly #bytesPerSecond: number;
  readonly #onDone: () => void;
  #receivedBytes = 0;
  #isDone = false;

  constructor(options: SttStreamOptions, sampleRate: number, onDone: () => void) {
    this.#options = options;
    this.#bytesPerSecond = sampleRate * 2;
    this.#onDone = onDone;
  }

  get receivedBytes(): number {
    return this.#receivedBytes;
  }

  write(pcm: Uint8Array): void {
    if (this.#isDone) return;
    const secondsBefore = Math.floor(this.#receivedBytes / this.#bytesPerSecond);
    this.#receivedBytes += pcm.byteLength;
    const secondsAfter = Math.floor(this.#receivedBytes / this.#bytesPerSecond);
    if (secondsAfter > secondsBefore) this.#options.onPartial(`[mock: ${secondsAfter} s of audio]`);
  }

  async finish(): Promise<string> {
    if (this.#isDone) throw new SttServiceError('stream already finished');
    this.#isDone = true;
    this.#onDone();
    return mockTranscript(this.#receivedBytes, this.#bytesPerSecond / 2);
  }

  abort(): void {
    if (this.#isDone) return;
    this.#isDone = true;
    this.#onDone();
  }
}
