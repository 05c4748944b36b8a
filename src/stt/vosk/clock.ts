// The time base of speech-recognition batching, load figures and admission: performance.now() and a
// real timer in production; tests pass a clock they advance themselves, so that "a task leaves at most
// every 40 ms" is checked in exact milliseconds instead of racing a loaded machine.
import { performance } from 'node:perf_hooks';

export interface Clock {
  /** Milliseconds on a monotonic time base (performance.now()'s by default). */
  now(): number;
  /** Calls `callback` once, `delayMs` from now. */
  setTimeout(callback: () => void, delayMs: number): void;
}

export const realClock: Clock = Object.freeze({
  now: () => performance.now(),
  setTimeout: (callback: () => void, delayMs: number): void => {
    setTimeout(callback, delayMs);
  },
});
