// The Vosk speech engine: validates and loads the model, runs recognition on a fixed pool of worker
// threads (or on the main thread with `workers: 0`), admits streams only while a worker has room and
// fewer streams are open than the learned limit (stream-limit.ts), and reports health. Streams, batching
// and rings live in worker-slot.ts / stream.ts / audio-ring.ts.
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
import { WorkerSlot, type SlotStreamSnapshot } from './worker-slot.js';
import type { StreamRate } from './stream.js';
import { upsampleFactor } from './upsampler.js';
import { measureDecodeCost } from './calibrate.js';
import { EventLoopMeter } from './event-loop-meter.js';
import { AdaptiveStreamLimit } from './stream-limit.js';
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
  readonly #loopMeter: EventLoopMeter;
  readonly #streamLimit: AdaptiveStreamLimit;
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
      const costPerAudioSecond = measureDecodeCost(model.address, resolved.sampleRate * upsampleFactor(resolved.sampleRate, modelRateHz));
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
            maxBatchesInFlight: options.maxBatchesInFlight,
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
          onFinal: (latencyMs) => this.#streamLimit.record(latencyMs, this.#activeStreams(), this.#options.clock.now()),
          onDecoded: (busyMs) => this.emit('decoded', busyMs / 1000),
        }),
    );
    this.#streamLimit = new AdaptiveStreamLimit({
      targetMs: options.targetFinishLatencyMs,
      floor: slotCount,
      onChange: (change, direction) => {
        const fields = { ...change, targetFinishLatencyMs: options.targetFinishLatencyMs };
        if (direction === 'decrease') logger.warn(fields, 'speech recognition: final texts came late; admitting fewer streams');
        else logger.info(fields, 'speech recognition: final texts on time near the limit; admitting more streams');
      },
    });
    for (const slot of this.#slots) slot.load.seedCost(costPerAudioSecond);
    this.#loopMeter = new EventLoopMeter({
      bytesPerMs,
      audioBytesWritten: () => this.#sumOverSlots((slot) => slot.audioBytesWritten),
      streamsOpened: () => this.#sumOverSlots((slot) => slot.streamsOpened),
      openStreams: () => this.#activeStreams(),
      decodeMsOnMainThread: () => (options.workers === 0 ? this.#sumOverSlots((slot) => slot.load.busyMsTotal) : 0),
    });
    logger.info(
      {
        modelPath: model.path,
        workers: options.workers,
        sampleRate: options.sampleRate,
        modelSampleRate: modelRateHz,
        costPerAudioSecond: Number(costPerAudioSecond.toFixed(4)),
        streamCapacity: costPerAudioSecond > 0 ? Math.floor(options.cpuBudget / costPerAudioSecond) : null,
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
    const now = this.#options.clock.now();
    const best = this.#admittingSlot(now, rate.costWeight);
    if (best === null) {
      throw new SttBusyError('speech recognition is at capacity', { details: this.#busyReason(now) });
    }
    return best.openStream(options, rate, this.#logger);
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
    const now = this.#options.clock.now();
    const activeStreams = this.#activeStreams();
    const queueDepth = this.#sumOverSlots((slot) => slot.batchesInFlight);
    const ready = this.#sumOverSlots((slot) => (slot.threadId === null ? 0 : 1));
    let status: SttHealth['status'] = 'healthy';
    let reason: string | null = null;
    if (this.#isClosing) {
      status = 'unavailable';
      reason = 'vosk engine closed';
    } else if (ready === 0) {
      status = 'unavailable';
      reason = 'no vosk worker is running';
    } else if (ready < this.#slots.length) {
      status = 'degraded';
      reason = `${this.#slots.length - ready} of ${this.#slots.length} vosk workers restarting`;
    } else if (this.#admittingSlot(now, 1) === null) {
      status = 'degraded';
      reason = `at capacity: ${this.#busyReason(now)}`;
    }
    return {
      engine: 'vosk',
      status,
      reason,
      modelPath: this.#model.path,
      workers: this.#options.workers,
      activeStreams,
      queueDepth,
      streamLimit: this.#learnedLimit(now),
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

  /**
   * The least busy worker that can take one more real-time stream without pushing any admitted stream
   * past real time, or null: the main thread must be keeping up, the whole pool must stay within its CPU
   * budget, and the worker itself within maxUtilisation, measured and predicted.
   */
  #admittingSlot(now: number, costWeight: number): WorkerSlot | null {
    if (this.#loopMeter.sustainedP99Ms > this.#options.maxEventLoopDelayMs) return null;
    if (this.#activeStreams() >= this.#streamLimit.limitAt(now)) return null;
    // Each stream costs its worker's decode time and the main thread's share (audio in, events out).
    const mainCost = this.#loopMeter.costPerAudioSecond;
    let predictedTotal = 0;
    for (const slot of this.#slots) {
      predictedTotal += slot.admittedWeight * (slot.load.costPerAudioSecond + mainCost);
    }
    let best: WorkerSlot | null = null;
    for (const slot of this.#slots) {
      if (!this.#canAdmit(slot, now, costWeight)) continue;
      if (predictedTotal + costWeight * (slot.load.costPerAudioSecond + mainCost) > this.#options.cpuBudget) continue;
      if (best === null || slot.admittedWeight < best.admittedWeight) best = slot;
    }
    return best;
  }

  #canAdmit(slot: WorkerSlot, now: number, costWeight: number): boolean {
    if (slot.threadId === null || slot.freeHandles === 0) return false;
    if (slot.lagMs(now) > this.#options.maxLagMs) return false;
    // Predicted load if every stream (and the new one) sends real-time audio.
    const predicted = (slot.admittedWeight + costWeight) * slot.load.costPerAudioSecond;
    // Measured utilisation only speaks for streams still running: an emptied worker has room whatever
    // its last window measured.
    if (predicted > this.#options.maxUtilisation) return false;
    return slot.usedHandles === 0 || slot.load.utilisationAt(now) <= this.#options.maxUtilisation;
  }

  /** The learned stream limit, or null while none was learned. */
  #learnedLimit(now: number): number | null {
    const limit = this.#streamLimit.limitAt(now);
    return Number.isFinite(limit) ? limit : null;
  }

  #busyReason(now: number): string {
    const decrease = this.#streamLimit.lastDecrease;
    const limit = this.#learnedLimit(now);
    const learned =
      limit === null
        ? []
        : [
            `limit ${limit} streams (over ${this.#options.targetFinishLatencyMs} ms for ${decrease?.slow ?? 0} of ${decrease?.finishes ?? 0} final texts with ${decrease?.openStreams ?? 0} streams open)`,
          ];
    return this.#slots
      .map((slot) => {
        if (slot.threadId === null) return `worker ${slot.index}: restarting`;
        return `worker ${slot.index}: ${slot.usedHandles} streams, load ${slot.load.utilisationAt(now).toFixed(2)}, lag ${slot.lagMs(now).toFixed(0)} ms`;
      })
      .concat(
        `main thread ${this.#loopMeter.costPerAudioSecond.toFixed(4)} s per audio-s, event loop p99 ${this.#loopMeter.sustainedP99Ms.toFixed(0)} ms`,
        learned,
      )
      .join('; ');
  }

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
    this.#loopMeter.stop();
    this.#model.release();
    this.#logger.info('vosk engine closed');
  }
}
