// A scripted speech engine for dialogue tests (like livekit's fake_stt): it implements the real SttEngine
// interface over the mock engine (whose transcript states how many bytes it received) and can, on
// demand, refuse the next streams as a saturated pool does, end the next recordings with no text, or
// hold a stream's final text until the test releases it.
import { SttBusyError } from '../../src/errors.js';
import type { SttEngine, SttHealth, SttStream, SttStreamOptions } from '../../src/stt/engine.js';
import { MockSttEngine } from '../../src/stt/mock-engine.js';

export class ScriptedStt implements SttEngine {
  readonly name = 'mock' as const;
  readonly #inner = new MockSttEngine({ sampleRate: 16000, reason: 'scripted test engine' });
  /** Streams to refuse with STT_SERVICE_BUSY, from the next one on. */
  refuseNext = 0;
  /** Recordings to end with an empty text (nothing was said), from the next finish on. */
  silentNext = 0;
  /** While set, finish() waits for it: the test decides when the final text is ready. */
  finishGate: Promise<void> | null = null;
  /** Streams opened (refused ones not counted). */
  opened = 0;
  #waitingAtGate = 0;
  #onGateWait: Array<() => void> = [];

  get sampleRate(): number {
    return this.#inner.sampleRate;
  }

  openStream(options: SttStreamOptions): SttStream {
    if (this.refuseNext > 0) {
      this.refuseNext--;
      throw new SttBusyError('speech recognition is busy (scripted)');
    }
    this.opened++;
    const inner = this.#inner.openStream(options);
    const engine = this;
    return {
      write: (pcm) => inner.write(pcm),
      abort: () => inner.abort(),
      get receivedBytes() {
        return inner.receivedBytes;
      },
      async finish() {
        const gate = engine.finishGate;
        if (gate) {
          engine.#waitingAtGate++;
          for (const wake of engine.#onGateWait.splice(0)) wake();
          await gate;
          engine.#waitingAtGate--;
        }
        const text = await inner.finish();
        if (engine.silentNext > 0) {
          engine.silentNext--;
          return '';
        }
        return text;
      },
    };
  }

  /** Resolves when a finish() is waiting on the gate. */
  gateReached(): Promise<void> {
    if (this.#waitingAtGate > 0) return Promise.resolve();
    return new Promise((resolve) => this.#onGateWait.push(resolve));
  }

  health(): SttHealth {
    return this.#inner.health();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
