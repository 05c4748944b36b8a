// The worker threads: one Piscina pool of fixed size (minThreads = maxThreads, never reaped), where each
// thread serves one slot. A sticky load balancer sends every task of a slot to that slot's thread, so a
// stream's recogniser is only ever touched by one thread and its audio ring is read by one reader.
//
// Binding: when Piscina reports a thread ready ('workerCreate') it is bound to the lowest slot without a
// thread; when a thread exits (crash, uncaught error, terminate) its slot is unbound and reported lost,
// and Piscina starts a replacement that is bound as soon as it is ready. Tasks are only
// submitted for bound slots, so the balancer always has an answer and Piscina's queue stays empty (a
// queued task would hold up every other slot's tasks behind it).
import { once } from 'node:events';
import { extname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Piscina, type PiscinaTask } from 'piscina';
import type { Logger } from 'pino';
import type { DecodeResult, DecodeTask, StopTask, VoskWorkerData, WorkerTask } from '../../../workers/messages.js';
import type { DecodeExecutor, SlotListener } from './executor.js';

/** Routing data a task carries for the balancer (symbol-keyed: not cloned to the worker). */
interface SlotRoute {
  slot: number;
}

type PiscinaWorkerView = Parameters<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer'] & {}>[1][number];

export interface VoskPoolOptions {
  /** Worker threads (= slots). */
  workers: number;
  workerData: VoskWorkerData;
  /** Tasks one worker may have posted at once (pipelining; results still arrive in order). */
  maxTasksInFlight: number;
  listener: SlotListener;
  logger: Logger;
}

// Compiled code lives in dist/src/stt/vosk and dist/workers; under tsx both are .ts.
const WORKER_FILE = new URL(`../../../workers/vosk-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

const DESTROY_GRACE_MS = 10_000;

export class VoskPool implements DecodeExecutor {
  readonly mode = 'workers';
  readonly slots: number;
  readonly #piscina: Piscina<WorkerTask, DecodeResult>;
  /** threadId bound to each slot, or -1. */
  readonly #slotThreads: Int32Array;
  readonly #listener: SlotListener;
  readonly #logger: Logger;
  #isDestroying = false;
  #destroyed: Promise<void> | null = null;

  constructor(options: VoskPoolOptions) {
    this.slots = options.workers;
    this.#listener = options.listener;
    this.#logger = options.logger;
    this.#slotThreads = new Int32Array(options.workers).fill(-1);
    this.#piscina = new Piscina<WorkerTask, DecodeResult>({
      filename: WORKER_FILE.href,
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: options.maxTasksInFlight,
      workerData: options.workerData,
      loadBalancer: (task, workers) => this.#balance(task, workers),
    });
    this.#piscina.on('workerCreate', (worker: PiscinaWorkerView) => this.#onWorkerReady(worker.id));
    // Piscina emits 'error' for a thread that failed with no task running; the thread is replaced and
    // the thread's 'exit' reports its slot. Without a listener the emit would throw.
    this.#piscina.on('error', (err: unknown) => {
      this.#logger.error({ err }, 'vosk worker failed outside a task');
    });
  }

  run(task: DecodeTask): Promise<DecodeResult> {
    const route: SlotRoute = { slot: task.slot };
    const routed = task as DecodeTask & { [key: symbol]: SlotRoute };
    routed[Piscina.queueOptionsSymbol] = route;
    return this.#piscina.run(routed);
  }

  threadIdOf(slot: number): number | null {
    const threadId = this.#slotThreads[slot] ?? -1;
    return threadId === -1 ? null : threadId;
  }

  /**
   * Stops the slot's thread after the batches already posted to it. A stop task rather than
   * Worker.terminate(): terminating a thread inside a libvosk call aborts the whole process (koffi
   * throws into the dying isolate).
   */
  async terminateSlot(slot: number): Promise<void> {
    const threadId = this.threadIdOf(slot);
    if (threadId === null) return;
    const thread = this.#piscina.threads.find((candidate) => candidate.threadId === threadId);
    if (thread === undefined) return;
    const exited = once(thread, 'exit');
    const stop = { type: 'stop', slot } as StopTask & { [key: symbol]: SlotRoute };
    stop[Piscina.queueOptionsSymbol] = { slot };
    // The task never returns a result: the thread exits while running it, so Piscina rejects the run.
    this.#piscina.run(stop).catch((err: unknown) => this.#logger.debug({ err, slot }, 'vosk worker stopped by request'));
    await exited;
  }

  /**
   * Lets running batches finish, then ends the threads (close, not destroy: see terminateSlot); a thread
   * stuck longer than DESTROY_GRACE_MS is terminated anyway.
   */
  destroy(): Promise<void> {
    if (this.#destroyed === null) {
      this.#isDestroying = true;
      const closed = this.#piscina.close();
      this.#destroyed = Promise.race([closed, sleep(DESTROY_GRACE_MS, 'timeout' as const, { ref: false })]).then(async (outcome) => {
        if (outcome === 'timeout') {
          this.#logger.error({ graceMs: DESTROY_GRACE_MS }, 'vosk workers still busy at shutdown; terminating them');
          await this.#piscina.destroy();
        }
      });
    }
    return this.#destroyed;
  }

  #balance(task: PiscinaTask, workers: PiscinaWorkerView[]): PiscinaWorkerView | null {
    const route = (task as PiscinaTask & { [key: symbol]: SlotRoute | null })[Piscina.queueOptionsSymbol];
    const threadId = route === null || route === undefined ? -1 : (this.#slotThreads[route.slot] ?? -1);
    for (const worker of workers) {
      if (worker.id === threadId && !worker.terminating && !worker.destroyed) return worker;
    }
    // Only reachable if a task was submitted for an unbound slot (a bug): Piscina queues it.
    this.#logger.error({ slot: route?.slot }, 'vosk task for a slot without a worker');
    return null;
  }

  #onWorkerReady(threadId: number): void {
    if (this.#isDestroying) return;
    const slot = this.#slotThreads.indexOf(-1);
    if (slot === -1) return;
    const thread = this.#piscina.threads.find((candidate) => candidate.threadId === threadId);
    if (thread === undefined) return;
    // The thread's own 'exit' (it follows crashes, uncaught errors and terminate()) marks the slot lost;
    // Piscina's 'workerDestroy' cannot: by then the interface's id reads -1.
    thread.once('exit', () => this.#onThreadExit(slot, threadId));
    this.#slotThreads[slot] = threadId;
    // 'workerCreate' comes before the thread has loaded its module (libvosk, the decoder): an empty batch
    // binds the thread to its slot and proves it can decode, so no stream waits for a thread's start-up.
    this.#piscina.run(this.#warmUpTask(slot)).then(
      () => {
        if (this.#isDestroying || this.#slotThreads[slot] !== threadId) return;
        this.#logger.debug({ slot, threadId }, 'vosk worker ready');
        this.#listener.onSlotReady(slot, threadId);
      },
      (err: unknown) => {
        // The thread failed to start; its 'exit' unbinds the slot and Piscina starts a replacement.
        this.#logger.error({ err, slot, threadId }, 'vosk worker failed to start');
      },
    );
  }

  #warmUpTask(slot: number): DecodeTask {
    const task = { type: 'decode', slot, seq: -1, ops: new Int32Array(0) } as DecodeTask & { [key: symbol]: SlotRoute };
    task[Piscina.queueOptionsSymbol] = { slot };
    return task;
  }

  #onThreadExit(slot: number, threadId: number): void {
    if (this.#isDestroying || this.#slotThreads[slot] !== threadId) return;
    this.#slotThreads[slot] = -1;
    this.#logger.warn({ slot, threadId }, 'vosk worker stopped; replacing it');
    this.#listener.onSlotLost(slot, new Error(`vosk worker thread ${threadId} stopped`));
  }
}
