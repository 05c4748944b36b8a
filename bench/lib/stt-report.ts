// Output of the speech benchmarks: a plain-text table for people and one JSON line for machines.
import type { RecordingResult } from './stt-client.js';

/** The p-quantile (0..1) of `values` by nearest rank; NaN when empty. */
export function quantile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** Prints rows as a table with a header row; every cell is already text. */
export function printTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>, write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): void {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  write(line(header));
  write(`|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`);
  for (const row of rows) write(line(row));
}

export function fixed(value: number | null | undefined, digits = 1): string {
  return value === null || value === undefined || Number.isNaN(value) ? '-' : value.toFixed(digits);
}

/** Progress lines go to stderr so that stdout holds only the table and the JSON line. */
export function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

export function isoDate(): string {
  return new Date().toISOString().slice(0, 16).replace('T', ' ');
}

/** What a set of recordings came to (stt-realtime's trials, stt-admission's bursts). */
export interface RecordingsSummary {
  offered: number;
  admitted: number;
  busy: number;
  correct: number;
  wrong: number;
  failed: number;
  timedOut: number;
  /** message_end -> message_recorded of the admitted recordings (ms). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function summariseRecordings(results: readonly RecordingResult[], offered: number): RecordingsSummary {
  const latencies = results.filter((r) => r.outcome !== 'busy' && r.latencyMs !== null).map((r) => r.latencyMs!);
  const count = (outcome: RecordingResult['outcome']): number => results.filter((r) => r.outcome === outcome).length;
  return {
    offered,
    admitted: offered - count('busy'),
    busy: count('busy'),
    correct: count('ok'),
    wrong: count('wrong'),
    failed: count('failed'),
    timedOut: count('timeout'),
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    maxMs: quantile(latencies, 1),
  };
}
