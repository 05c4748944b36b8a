// Percentiles and the per-step summary of a load run.
import type { MetricName } from './messages.js';

export interface Percentiles {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

/** Nearest-rank percentiles (p99 of 50 samples is the largest one: few samples make p99 a maximum). */
export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { count: 0, p50: null, p95: null, p99: null, max: null, mean: null };
  const sorted = Float64Array.from(values).sort();
  const rank = (p: number): number => round1(sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!);
  const sum = sorted.reduce((total, value) => total + value, 0);
  return { count: sorted.length, p50: rank(50), p95: rank(95), p99: rank(99), max: round1(sorted[sorted.length - 1]!), mean: round1(sum / sorted.length) };
}

export function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

export interface StepResult {
  users: number;
  /** Latencies count operations that started inside [windowStart, windowEnd] (after the warm-up). */
  windowSeconds: number;
  turns: number;
  latency: Record<MetricName, Percentiles>;
  /** Failures during the whole step (warm-up included), by kind. */
  errors: Record<string, number>;
  errorTotal: number;
  wrongTranscriptExamples: string[];
  serverCpuPercentOfCore: number;
  serverCpuPercentOfMachine: number;
  /** Each voxgate process of the step (one entry without --cluster); serverCpuPercentOfCore is their sum. */
  serverCpuPercentOfCoreByNode: number[];
  /** redis-server and HAProxy (master + worker) of a --cluster setup; null when not in the setup. */
  redisCpuPercentOfCore: number | null;
  proxyCpuPercentOfCore: number | null;
  /** Each node's open WebSocket connections at the end of the step (/api/health; null: no answer). */
  connectionsByNode: Array<number | null>;
  serverRssMaxMiB: number;
  serverRssEndMiB: number;
  /** The load generator's own processes and the fake LLM, as % of one core (they share the machine). */
  clientCpuPercentOfCore: number;
  fakeLlmCpuPercentOfCore: number;
  loadAverage1m: number;
}

export interface CapacityRule {
  metric: MetricName;
  percentile: 'p99';
  belowMs: number;
}

/** The largest step (in order) whose p99 is under the limit with no failures, every smaller step passing too. */
export function capacity(steps: StepResult[], rule: CapacityRule): { users: number | null; firstFailing: { users: number; reason: string } | null } {
  let users: number | null = null;
  for (const step of steps) {
    const value = step.latency[rule.metric][rule.percentile];
    let reason: string | null = null;
    if (step.errorTotal > 0) reason = `${step.errorTotal} errors (${Object.entries(step.errors).map(([kind, n]) => `${kind} ${n}`).join(', ')})`;
    else if (value === null) reason = 'no samples';
    else if (value >= rule.belowMs) reason = `${rule.metric} ${rule.percentile} ${value} ms >= ${rule.belowMs} ms`;
    if (reason !== null) return { users, firstFailing: { users: step.users, reason } };
    users = step.users;
  }
  return { users, firstFailing: null };
}
