import { EventEmitter } from 'node:events';
import type { SuggestionSink } from '../../src/llm/engine.js';

export interface RecordedDelta {
  index: number;
  delta: string;
  at: number;
}

/**
 * A SuggestionSink that records every delta and can play a slow receiver: after block(), the next write
 * returns false and drained() stays pending until release() (or rejects on fail()).
 */
export class RecordingSink implements SuggestionSink {
  readonly events = new EventEmitter();
  readonly writes: RecordedDelta[] = [];
  #isBlocking = false;
  #drained: Promise<void> = Promise.resolve();
  #resolve: (() => void) | null = null;
  #reject: ((err: unknown) => void) | null = null;
  drainedCalls = 0;

  write(index: number, delta: string): boolean {
    this.writes.push({ index, delta, at: performance.now() });
    this.events.emit('write', index, delta);
    return !this.#isBlocking;
  }

  drained(): Promise<void> {
    this.drainedCalls++;
    this.events.emit('drained-called');
    return this.#drained;
  }

  block(): void {
    this.#isBlocking = true;
    this.#drained = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // A rejection nobody awaited yet must not crash the test run.
    this.#drained.catch(() => undefined);
  }

  release(): void {
    this.#isBlocking = false;
    this.#resolve?.();
  }

  fail(err: unknown): void {
    this.#isBlocking = false;
    this.#reject?.(err);
  }

  /** The concatenated deltas per suggestion index. */
  texts(): string[] {
    const texts: string[] = [];
    for (const { index, delta } of this.writes) texts[index] = (texts[index] ?? '') + delta;
    return texts;
  }
}
