// Where decode batches run. Two implementations: VoskPool (src/stt/vosk/pool.ts, one worker thread per
// slot) and InProcessExecutor below (`workers: 0`, recognition on the main thread, for benchmark
// comparison). Slots, streams and batching (worker-slot.ts) are the same code path for both.
import { setImmediate } from 'node:timers';
import type { DecodeResult, DecodeTask } from '../../../workers/messages.js';
import { BatchDecoder } from './decoder.js';

export interface SlotListener {
  /** The slot's thread is serving tasks (initially, and after a replacement). */
  onSlotReady(slot: number, threadId: number): void;
  /** The slot's thread is gone, and with it every recogniser of the slot's streams. */
  onSlotLost(slot: number, cause: Error): void;
}

export interface DecodeExecutor {
  readonly mode: 'workers' | 'in-process';
  /** Number of slots (worker threads, or 1 in-process). */
  readonly slots: number;
  /** Runs a batch on the slot's thread; batches of one slot run in the order given. */
  run(task: DecodeTask): Promise<DecodeResult>;
  /** The threadId serving `slot`, or null while it has none (being replaced). */
  threadIdOf(slot: number): number | null;
  /** Stops the slot's thread now (its native state is suspect); it is replaced and reported lost. */
  terminateSlot(slot: number): Promise<void>;
  /** Stops every thread now. Idempotent. */
  destroy(): Promise<void>;
}

export interface InProcessExecutorOptions {
  modelAddress: bigint;
  ring: SharedArrayBuffer;
  streamsPerSlot: number;
  partialIntervalMs: number;
  listener: SlotListener;
}

/** One slot decoded on the main thread, a batch per event-loop turn. */
export class InProcessExecutor implements DecodeExecutor {
  readonly mode = 'in-process';
  readonly slots = 1;
  readonly #decoder: BatchDecoder;
  #isDestroyed = false;

  constructor(options: InProcessExecutorOptions) {
    this.#decoder = new BatchDecoder({
      modelAddress: options.modelAddress,
      ring: options.ring,
      streams: options.streamsPerSlot,
      partialIntervalMs: options.partialIntervalMs,
      threadId: 0,
    });
    const listener = options.listener;
    queueMicrotask(() => listener.onSlotReady(0, 0));
  }

  run(task: DecodeTask): Promise<DecodeResult> {
    // Decode on a later turn, like a worker reply, so callers see the same ordering in both modes.
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        if (this.#isDestroyed) {
          reject(new Error('in-process decoder destroyed'));
          return;
        }
        try {
          resolve(this.#decoder.decode(task));
        } catch (err) {
          reject(err as Error);
        }
      });
    });
  }

  threadIdOf(): number | null {
    return this.#isDestroyed ? null : 0;
  }

  terminateSlot(): Promise<void> {
    // There is no thread to replace; the caller fails the slot's streams itself.
    return Promise.resolve();
  }

  destroy(): Promise<void> {
    if (!this.#isDestroyed) {
      this.#isDestroyed = true;
      this.#decoder.close();
    }
    return Promise.resolve();
  }
}
