// Clocks for src/stt/vosk/clock.ts's interface. FakeClock: time stands still until the test calls
// advance(), which runs the timers that fall due in order, each at its own time, letting the code under
// test react between them (in-process code only: without I/O, how many turns that takes is fixed).
import { setImmediate } from 'node:timers/promises';
import type { Clock } from '../../src/stt/vosk/clock.js';

interface Timer {
  dueMs: number;
  order: number;
  callback: () => void;
}

/** Lets every promise callback and setImmediate the code under test queued run (a few event-loop turns). */
export async function settle(): Promise<void> {
  // Each turn runs the immediates queued in the turn before; chains of result -> flush -> schedule are
  // at most a few turns long.
  for (let turn = 0; turn < 10; turn++) await setImmediate();
}

export class FakeClock implements Clock {
  #nowMs: number;
  #timers: Timer[] = [];
  #order = 0;

  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  setTimeout(callback: () => void, delayMs: number): void {
    this.#timers.push({ dueMs: this.#nowMs + Math.max(0, delayMs), order: this.#order++, callback });
  }

  /** Moves time forward by `ms`, running each timer due on the way at its due time, then settles. */
  async advance(ms: number): Promise<void> {
    const targetMs = this.#nowMs + ms;
    await settle();
    for (;;) {
      let next: Timer | undefined;
      for (const timer of this.#timers) {
        if (timer.dueMs <= targetMs && (next === undefined || timer.dueMs < next.dueMs || (timer.dueMs === next.dueMs && timer.order < next.order))) next = timer;
      }
      if (next === undefined) break;
      this.#timers.splice(this.#timers.indexOf(next), 1);
      this.#nowMs = next.dueMs;
      next.callback();
      await settle();
    }
    this.#nowMs = targetMs;
    await settle();
  }
}
