// CPU time and resident memory of a process, read from /proc (Linux): what the server costs under load.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`; 100 on every common Linux). */
export const CLOCK_TICKS_PER_SECOND: number = (() => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(value) && value > 0 ? value : 100;
  } catch (err) {
    // No getconf (minimal images): every Linux architecture we run on uses USER_HZ = 100.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 100;
    throw err;
  }
})();

/** The text of a /proc file, or null when the process is gone (ENOENT, ESRCH). */
export function readProcText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return null;
    throw err;
  }
}

/** utime + stime of the process (all its threads) in seconds, or null once it is gone. */
export function cpuSeconds(pid: number): number | null {
  const text = readProcText(`/proc/${pid}/stat`);
  if (text === null) return null;
  // The command name (field 2) may contain spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: state is index 0, so utime (field 14) is index 11 and stime (field 15) index 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLOCK_TICKS_PER_SECOND;
}

/** VmRSS of the process in bytes, or null once it is gone. */
export function rssBytes(pid: number): number | null {
  const text = readProcText(`/proc/${pid}/status`);
  if (text === null) return null;
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(text);
  return match ? Number(match[1]) * 1024 : null;
}

/** The 1-minute load average (from /proc/loadavg). */
export function loadAverage1m(): number {
  return Number(readProcText('/proc/loadavg')?.split(' ')[0] ?? Number.NaN);
}

/** CPU use of a set of processes between two instants. */
export class CpuWindow {
  readonly #pids: number[];
  readonly #startSeconds: number;
  readonly #startWallMs: number;

  constructor(pids: number[]) {
    this.#pids = pids;
    this.#startSeconds = this.#total();
    this.#startWallMs = performance.now();
  }

  /** CPU seconds used since construction, as a percentage of one core. */
  percentOfOneCore(): number {
    const wallSeconds = (performance.now() - this.#startWallMs) / 1000;
    if (wallSeconds <= 0) return 0;
    return (100 * (this.#total() - this.#startSeconds)) / wallSeconds;
  }

  #total(): number {
    let total = 0;
    for (const pid of this.#pids) total += cpuSeconds(pid) ?? 0;
    return total;
  }
}
