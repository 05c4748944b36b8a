// Numbers, vectors and matrices in Kaldi's text format, as the Python prototype writes them.
import { formatG } from './format-g.js';

/**
 * Kaldi's text reader rejects numbers that start with '.' or '+', which %g never writes; "-0" becomes
 * "0" as in the prototype.
 */
export function kaldiNumber(x: number, precision: number): string {
  const text = formatG(x, precision);
  return text === '-0' ? '0' : text;
}

export function kaldiVector(values: ArrayLike<number>, precision: number): string {
  const parts: string[] = [];
  for (let i = 0; i < values.length; i++) parts.push(kaldiNumber(values[i] ?? 0, precision));
  return `[ ${parts.join(' ')} ]`;
}

/** Rows are written "  a b c", separated by newlines, after "[\n"; the closing " ]" ends the last row. */
export function kaldiMatrixRow(row: ArrayLike<number>, precision: number): string {
  const parts: string[] = [];
  for (let i = 0; i < row.length; i++) parts.push(kaldiNumber(row[i] ?? 0, precision));
  return `  ${parts.join(' ')}`;
}

export function kaldiMatrix(rows: ArrayLike<number>[], precision: number): string {
  return `[\n${rows.map((row) => kaldiMatrixRow(row, precision)).join('\n')} ]`;
}
