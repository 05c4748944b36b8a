// The Vosk engine's options: defaults and validation in one place (bad options throw at construction).
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { ConfigError } from '../../errors.js';
import { realClock, type Clock } from './clock.js';

export interface VoskEngineOptions {
  /** Directory of the Vosk model. */
  modelPath: string;
  /** Sample rate of the PCM streams receive (Hz, VOSK_SAMPLE_RATE). */
  sampleRate: number;
  /** Worker threads; 0 runs recognition on the main thread. Default: available cores. */
  workers?: number;
  /** Concurrent streams one worker may hold (ring regions). Default 512. */
  maxStreamsPerWorker?: number;
  logger: Logger;
  /** Audio one stream may have buffered ahead of its recogniser (ms). Default 4000. */
  streamBufferMs?: number;
  /** A stream's audio is sent once this much is pending (ms). Default 100. */
  minChunkMs?: number;
  /** At most this much of one stream's audio per batch (ms), so partials keep flowing. Default 200. */
  maxChunkMs?: number;
  /** A stream's partial text is read (and sent if it changed) once this much audio came since the last read, or a tenth of its segment if longer (that tenth capped at 1 s) (ms). Default 200. */
  partialIntervalMs?: number;
  /** Batches one worker may have in flight (pipelining). Default 1: while a batch runs, audio gathers into the next one (fewer, larger messages). */
  maxBatchesInFlight?: number;
  /** Least time between two decode tasks of one worker that only carry audio (ms); a finishing stream does not wait. Default 20. */
  minBatchIntervalMs?: number;
  /**
   * Share of one core a worker's predicted decode load (its streams' cost per audio-second) may reach
   * with a new stream; past it the stream is refused (admission.ts) (0..1]. Default 0.9: measured, a
   * worker at 0.98 of a core with the bench model gave p50 406 ms (its final texts queue behind the
   * audio), at 0.8 p99 40-60 ms.
   */
  maxUtilisation?: number;
  /**
   * Time from a stream's finish() to its final text that more than 5 % of finishes in a second may not
   * exceed: past it the number of streams admitted is lowered (latency limit, admission.ts) (ms). Default 250:
   * the promise is p99 under 300 ms, and the 50 ms left cover what a window of few final texts misses.
   */
  targetFinishLatencyMs?: number;
  /** Time the model check (child process) may take (ms). Default 30000. */
  modelCheckTimeoutMs?: number;
  /** libvosk's log level (stderr): -1 silent, 0 info. Default -1. */
  voskLogLevel?: number;
  /** Time base of batching, load figures, admission and the latency limit's windows. Default: performance.now() and real timers (tests pass their own). */
  clock?: Clock;
}

export interface ResolvedOptions {
  modelPath: string;
  sampleRate: number;
  workers: number;
  maxStreamsPerWorker: number;
  streamBufferMs: number;
  minChunkMs: number;
  maxChunkMs: number;
  partialIntervalMs: number;
  maxBatchesInFlight: number;
  minBatchIntervalMs: number;
  maxUtilisation: number;
  targetFinishLatencyMs: number;
  modelCheckTimeoutMs: number;
  voskLogLevel: number;
  clock: Clock;
}

const DEFAULT_MAX_UTILISATION = 0.9;

const REMOVED_OPTIONS: readonly (readonly [string, string])[] = [
  ['cpuBudget', 'each worker is bounded by maxUtilisation (admission.ts)'],
  ['maxLagMs', 'late final texts lower the latency limit (targetFinishLatencyMs)'],
  ['maxEventLoopDelayMs', 'late final texts lower the latency limit (targetFinishLatencyMs)'],
];

export function resolveOptions(options: VoskEngineOptions): Readonly<ResolvedOptions> {
  const workers = options.workers ?? availableParallelism();
  const maxUtilisation = options.maxUtilisation ?? DEFAULT_MAX_UTILISATION;
  const resolved: ResolvedOptions = {
    modelPath: options.modelPath,
    sampleRate: options.sampleRate,
    workers,
    maxStreamsPerWorker: options.maxStreamsPerWorker ?? 512,
    streamBufferMs: options.streamBufferMs ?? 4000,
    minChunkMs: options.minChunkMs ?? 100,
    maxChunkMs: options.maxChunkMs ?? 200,
    partialIntervalMs: options.partialIntervalMs ?? 200,
    maxBatchesInFlight: options.maxBatchesInFlight ?? 1,
    minBatchIntervalMs: options.minBatchIntervalMs ?? 20,
    maxUtilisation,
    targetFinishLatencyMs: options.targetFinishLatencyMs ?? 250,
    modelCheckTimeoutMs: options.modelCheckTimeoutMs ?? 30_000,
    voskLogLevel: options.voskLogLevel ?? -1,
    clock: options.clock ?? realClock,
  };
  const problems: string[] = [];
  const integer = (name: keyof ResolvedOptions, min: number, max: number): void => {
    const value = resolved[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name}=${String(value)}: expected an integer ${min}..${max}`);
    }
  };
  if (typeof resolved.modelPath !== 'string' || resolved.modelPath === '') problems.push('modelPath: expected a directory');
  integer('sampleRate', 8000, 192_000);
  integer('workers', 0, 256);
  integer('maxStreamsPerWorker', 1, 65_536);
  integer('streamBufferMs', 1000, 60_000);
  integer('minChunkMs', 10, 1000);
  integer('maxChunkMs', 10, 5000);
  integer('partialIntervalMs', 0, 5000);
  integer('maxBatchesInFlight', 1, 16);
  integer('minBatchIntervalMs', 0, 1000);
  integer('targetFinishLatencyMs', 1, 60_000);
  // Removed options name what replaced them (an old caller fails loudly instead of being ignored).
  for (const [name, replacement] of REMOVED_OPTIONS) {
    if (name in options) problems.push(`${name}: removed; ${replacement}`);
  }
  integer('modelCheckTimeoutMs', 1, 600_000);
  integer('voskLogLevel', -1, 10);
  if (!(resolved.maxUtilisation > 0 && resolved.maxUtilisation <= 1)) problems.push(`maxUtilisation=${resolved.maxUtilisation}: expected 0 < x <= 1`);
  if (resolved.maxChunkMs < resolved.minChunkMs) problems.push('maxChunkMs: must be >= minChunkMs');
  if (resolved.streamBufferMs < 2 * resolved.maxChunkMs) problems.push('streamBufferMs: must be >= 2 * maxChunkMs');
  if (problems.length > 0) throw new ConfigError(`invalid Vosk engine options: ${problems.join('; ')}`, { details: problems.join('; ') });
  return Object.freeze(resolved);
}
