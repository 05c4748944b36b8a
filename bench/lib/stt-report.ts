// Output of the speech benchmarks: a plain-text table for people and one JSON line for machines.

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
