// The Vosk speech engine: validates and loads the model, runs recognition on a fixed pool of worker
// threads (or on the main thread with `workers: 0`), asks admission.ts who gets a recogniser, and
// reports health. Streams, batching and rings live in worker-slot.ts / stream.ts / audio-ring.ts.
//
// Each stream has its own sample rate (8..48 kHz; default: the engine's). libvosk resamples a rate above
// the model's itself and refuses one below it, which the decoder raises by a whole factor first
// (upsampler.ts). A stream's admission cost is proportional to the bytes per second libvosk decodes for
// it (StreamRate.costWeight): a 48 kHz stream counts three times a 16 kHz one.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { AudioFormatError, ModelInvalidError, SttBusyError, SttServiceError } from '../../errors.js';
import { checkModel, sampleRateHz as modelSampleRateHz } from '../../vosk-model/check.js';
import { isSupportedSampleRate, MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ, type SttEngine, type SttHealth, type SttStream, type SttStreamOptions } from '../engine.js';
import { AudioRing } from './audio-ring.js';
import { InProcessExecutor, type DecodeExecutor, type SlotListener } from './executor.js';
import { modelLoadCount, setVoskLogLevel, SharedVoskModel } from './model.js';
import { VoskPool } from './pool.js';
import { FRAME_TASKS_IN_FLIGHT, WorkerSlot, type SlotStreamSnapshot } from './worker-slot.js';
import type { StreamRate } from './stream.js';
import { upsampleFactor } from './upsampler.js';
import { availableParallelism } from 'node:os';
import { measureDecodeCost, seedCost } from './calibrate.js';
import { Admission } from './admission.js';
import { resolveOptions, type ResolvedOptions, type VoskEngineOptions } from './options.js';

export type { VoskEngineOptions };

export interface VoskEngineEvents {
  /** A worker thread serves `slot` (at start and after a replacement). */
  workerReady: [slot: number, threadId: number];
  /** The worker of `slot` stopped; its streams failed with STT_SERVICE_ERROR. */
  workerLost: [slot: number, cause: Error];
  /** A decode batch's result arrived; its worker was busy `busySeconds` on it (measured on the worker thread). */
  decoded: [busySeconds: number];
}

export interface VoskSlotSnapshot {
  slot: number;
  threadId: number | null;
  streams: number;
  batchesInFlight: number;
  utilisation: number;
  costPerAudioSecond: number;
  lagMs: number;
}

export interface VoskEngineSnapshot {
  /** vosk_model_new calls in this process so far. */
  modelLoads: number;
  slots: VoskSlotSnapshot[];
  streams: SlotStreamSnapshot[];
}


export class VoskEngine extends EventEmitter<VoskEngineEvents> implements SttEngine, SlotListener {
  readonly name = 'vosk';
  readonly #options: Readonly<ResolvedOptions>;
  readonly #logger: Logger;
  readonly #model: SharedVoskModel;
  readonly #slots: WorkerSlot[];
  readonly #executor: DecodeExecutor;
  readonly #admission: Admission<WorkerSlot>;
  /** The rate the model's features are computed at (its feature config). */
  readonly #modelRateHz: number;
  /** Bytes per second libvosk decodes for a stream at the engine's default rate (cost weight 1). */
  readonly #defaultFedBytesPerSecond: number;
  #isClosing = false;
  #closed: Promise<void> | null = null;
  #onDrained: (() => void) | null = null;

  /**
   * Validates the model in a child process (a broken model can abort the process inside libvosk), then
   * loads it once and starts the workers. Throws ModelInvalidError when the model is unusable and
   * ConfigError for bad options.
   */
  static async create(options: VoskEngineOptions): Promise<VoskEngine> {
    const resolved = resolveOptions(options);
    const check = await checkModel(resolved.modelPath, { timeoutMs: resolved.modelCheckTimeoutMs });
    if (!check.ok) {
      throw new ModelInvalidError(`Vosk model at ${resolved.modelPath} is unusable: ${check.reason}`, { details: check.reason });
    }
    setVoskLogLevel(resolved.voskLogLevel);
    const modelRateHz = modelSampleRateHz(resolved.modelPath);
    const model = SharedVoskModel.acquire(resolved.modelPath);
    let engine: VoskEngine;
    try {
      // Measured at the rate libvosk decodes a default stream at (raised first if below the model's).
      const calibrated = measureDecodeCost({
        modelAddress: model.address,
        sampleRate: resolved.sampleRate,
        upsampleFactor: upsampleFactor(resolved.sampleRate, modelRateHz),
        partialIntervalMs: resolved.partialIntervalMs,
      });
      const costPerAudioSecond = seedCost(calibrated, resolved.workers, availableParallelism());
      engine = new VoskEngine(resolved, model, modelRateHz, costPerAudioSecond, options.logger.child({ component: 'stt-vosk' }));
    } catch (err) {
      model.release();
      throw err;
    }
    try {
      await engine.#whenAllSlotsReady(resolved.modelCheckTimeoutMs);
    } catch (err) {
      await engine.destroy();
      throw err;
    }
    return engine;
  }

  /** Resolves once every slot has a started thread, so the first streams don't wait for thread start-up. */
  #whenAllSlotsReady(timeoutMs: number): Promise<void> {
    const isReady = (): boolean => this.#slots.every((slot) => slot.threadId !== null);
    if (isReady()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('workerReady', onReady);
        reject(new SttServiceError(`vosk workers did not start within ${timeoutMs} ms`));
      }, timeoutMs);
      const onReady = (): void => {
        if (!isReady()) return;
        clearTimeout(timer);
        this.off('workerReady', onReady);
        resolve();
      };
      this.on('workerReady', onReady);
    });
  }

  private constructor(options: Readonly<ResolvedOptions>, model: SharedVoskModel, modelRateHz: number, costPerAudioSecond: number, logger: Logger) {
    super();
    this.#options = options;
    this.#model = model;
    this.#logger = logger;
    this.#modelRateHz = modelRateHz;
    this.#defaultFedBytesPerSecond = options.sampleRate * upsampleFactor(options.sampleRate, modelRateHz) * 2;
    // Ring regions and pieces are sized in bytes at the default rate: a 48 kHz stream's buffer holds a
    // third of streamBufferMs (docs/stt.md).
    const bytesPerMs = (options.sampleRate * 2) / 1000;
    const even = (ms: number): number => 2 * Math.ceil((ms * bytesPerMs) / 2);
    const slotCount = Math.max(1, options.workers);
    const rings: AudioRing[] = [];
    for (let i = 0; i < slotCount; i++) {
      rings.push(new AudioRing({ streams: options.maxStreamsPerWorker, regionBytes: even(options.streamBufferMs) }));
    }
    this.#executor =
      options.workers === 0
        ? new InProcessExecutor({
            modelAddress: model.address,
            ring: rings[0]!.buffer,
            streamsPerSlot: options.maxStreamsPerWorker,
            partialIntervalMs: options.partialIntervalMs,
            listener: this,
          })
        : new VoskPool({
            workers: options.workers,
            workerData: {
              modelAddress: model.address,
              rings: rings.map((ring) => ring.buffer),
              streamsPerSlot: options.maxStreamsPerWorker,
              partialIntervalMs: options.partialIntervalMs,
            },
            // Batches and frame tasks (worker-slot.ts): the slot never has more in flight.
            maxTasksInFlight: options.maxBatchesInFlight + FRAME_TASKS_IN_FLIGHT,
            listener: this,
            logger,
          });
    this.#slots = rings.map(
      (ring, index) =>
        new WorkerSlot({
          index,
          ring,
          executor: this.#executor,
          minPieceBytes: even(options.minChunkMs),
          maxPieceBytes: even(options.maxChunkMs),
          maxBatchesInFlight: options.maxBatchesInFlight,
          minBatchIntervalMs: options.minBatchIntervalMs,
          // The load meter counts the bytes libvosk decoded, so its cost is per second of default-rate audio.
          bytesPerMs: this.#defaultFedBytesPerSecond / 1000,
          logger,
          clock: options.clock,
          onHandleFreed: () => this.#onHandleFreed(),
          onFinal: (latencyMs, openedAt) => this.#admission.recordFinal(latencyMs, openedAt, this.#options.clock.now()),
          onDecoded: (busyMs) => this.emit('decoded', busyMs / 1000),
        }),
    );
    for (const slot of this.#slots) slot.load.seedCost(costPerAudioSecond);
    this.#admission = new Admission(this.#slots, {
      maxUtilisation: options.maxUtilisation,
      targetFinishLatencyMs: options.targetFinishLatencyMs,
      onLimitChange: (change, direction) => {
        const fields = { ...change, targetFinishLatencyMs: options.targetFinishLatencyMs };
        if (direction === 'decrease') logger.warn(fields, 'speech recognition: final texts came late; admitting fewer streams');
        else logger.info(fields, 'speech recognition: final texts on time at the limit; admitting more streams');
      },
    });
    logger.info(
      {
        modelPath: model.path,
        workers: options.workers,
        sampleRate: options.sampleRate,
        modelSampleRate: modelRateHz,
        costPerAudioSecond: Number(costPerAudioSecond.toFixed(4)),
        streamCapacity: costPerAudioSecond > 0 ? slotCount * Math.floor(options.maxUtilisation / costPerAudioSecond) : null,
      },
      'vosk engine started',
    );
  }

  get sampleRate(): number {
    return this.#options.sampleRate;
  }

  /** The model path as loaded (absolute). */
  get modelPath(): string {
    return this.#model.path;
  }

  openStream(options: SttStreamOptions): SttStream {
    if (this.#isClosing) throw new SttServiceError('speech recognition is shutting down');
    const rate = this.#streamRate(options.sampleRate ?? this.#options.sampleRate);
    const best = this.#admission.choose(rate.costWeight);
    if (best === null) {
      const refusal = this.#admission.refusal(rate.costWeight);
      throw new SttBusyError('speech recognition is at capacity', { details: refusal?.details ?? 'capacity' });
    }
    return best.openStream(options, rate, this.#logger);
  }

  /**
   * Would a stream at the default rate be admitted now? Cheap (no allocation while it would): for
   * refusing before a WebSocket upgrade. openStream decides again; this only predicts.
   */
  canAdmit(): boolean {
    return !this.#isClosing && this.#admission.canAdmit();
  }

  #streamRate(sampleRate: number): StreamRate {
    if (!isSupportedSampleRate(sampleRate)) {
      throw new AudioFormatError(`sample rate ${sampleRate} Hz is not supported`, {
        details: `sample_rate: expected an integer ${MIN_SAMPLE_RATE_HZ}..${MAX_SAMPLE_RATE_HZ}`,
      });
    }
    const factor = upsampleFactor(sampleRate, this.#modelRateHz);
    return { sampleRate, upsampleFactor: factor, costWeight: (sampleRate * factor * 2) / this.#defaultFedBytesPerSecond };
  }

  health(): SttHealth {
    const activeStreams = this.#activeStreams();
    const queueDepth = this.#sumOverSlots((slot) => slot.batchesInFlight);
    const ready = this.#sumOverSlots((slot) => (slot.threadId === null ? 0 : 1));
    let status: SttHealth['status'] = 'healthy';
    let reason: string | null = null;
    let refusing: SttHealth['refusing'] = null;
    if (this.#isClosing) {
      status = 'unavailable';
      reason = 'vosk engine closed';
    } else if (ready === 0) {
      status = 'unavailable';
      reason = 'no vosk worker is running';
    } else if (ready < this.#slots.length) {
      status = 'degraded';
      reason = `${this.#slots.length - ready} of ${this.#slots.length} vosk workers restarting`;
    } else {
      const refusal = this.#admission.refusal();
      if (refusal !== null) {
        status = 'degraded';
        reason = `at capacity: ${refusal.details}`;
        refusing = refusal.reason;
      }
    }
    return {
      engine: 'vosk',
      status,
      reason,
      modelPath: this.#model.path,
      workers: this.#options.workers,
      activeStreams,
      queueDepth,
      streamLimit: this.#admission.limit(),
      refusing,
    };
  }

  /** Counters for tests and diagnostics. */
  snapshot(): VoskEngineSnapshot {
    const now = this.#options.clock.now();
    const streams: SlotStreamSnapshot[] = [];
    for (const slot of this.#slots) slot.snapshot(streams);
    return {
      modelLoads: modelLoadCount(),
      slots: this.#slots.map((slot) => ({
        slot: slot.index,
        threadId: slot.threadId,
        streams: slot.usedHandles,
        batchesInFlight: slot.batchesInFlight,
        utilisation: slot.load.utilisationAt(now),
        costPerAudioSecond: slot.load.costPerAudioSecond,
        lagMs: slot.lagMs(now),
      })),
      streams,
    };
  }

  /** Stops one worker thread now, as a crash would (diagnostics and fault tests). */
  terminateWorker(slot: number): Promise<void> {
    return this.#executor.terminateSlot(slot);
  }

  /**
   * Refuses new streams, waits until every open stream finished or was aborted (bound it with your own
   * timer and call destroy()), then stops the workers and frees the model. A second call joins the first.
   */
  close(): Promise<void> {
    if (this.#closed === null) {
      this.#isClosing = true;
      this.#closed = this.#drained().then(() => this.#release());
    }
    return this.#closed;
  }

  /** Aborts every stream and stops now. Idempotent; joins a close() in progress. */
  destroy(): Promise<void> {
    this.#isClosing = true;
    for (const slot of this.#slots) slot.abortAll();
    if (this.#closed === null) this.#closed = this.#release();
    else this.#onDrained?.();
    return this.#closed;
  }

  // --- SlotListener (executor -> engine) --------------------------------------------------------

  onSlotReady(slot: number, threadId: number): void {
    this.#slots[slot]?.ready(threadId);
    this.emit('workerReady', slot, threadId);
  }

  onSlotLost(slot: number, cause: Error): void {
    this.#slots[slot]?.lost(cause);
    this.emit('workerLost', slot, cause);
  }

  // --- internals --------------------------------------------------------------------------------

  #onHandleFreed(): void {
    if (this.#onDrained !== null && this.#activeStreams() === 0) this.#onDrained();
  }

  #activeStreams(): number {
    return this.#sumOverSlots((slot) => slot.usedHandles);
  }

  #sumOverSlots(value: (slot: WorkerSlot) => number): number {
    let total = 0;
    for (const slot of this.#slots) total += value(slot);
    return total;
  }

  #drained(): Promise<void> {
    if (this.#activeStreams() === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onDrained = () => {
        this.#onDrained = null;
        resolve();
      };
    });
  }

  async #release(): Promise<void> {
    // Workers first (their recognisers go with them; in-process ones are freed here), then the model.
    await this.#executor.destroy();
    this.#model.release();
    this.#logger.info('vosk engine closed');
  }
}
