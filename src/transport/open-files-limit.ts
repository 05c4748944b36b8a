import { readFileSync } from 'node:fs';

/**
 * The process's soft limit on open files (each WebSocket is one), or null where it can't be read
 * (not Linux). At the limit uWebSockets.js retries accept() in a busy loop (EMFILE) instead of letting
 * clients wait, so connections must be capped below it.
 */
export function openFilesSoftLimit(limitsText = readProcLimits()): number | null {
  if (limitsText === null) return null;
  const match = /^Max open files\s+(\d+|unlimited)\s+/m.exec(limitsText);
  if (!match) return null;
  return match[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match[1]);
}

function readProcLimits(): string | null {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * How many client connections fit under `softLimit`, keeping descriptors free for everything else (LLM
 * sockets, the store, logs, worker threads): 256 plus one per in-flight LLM request, at most half.
 */
export function connectionsWithinLimit(softLimit: number, llmMaxInFlight: number): number {
  const reserve = Math.min(256 + llmMaxInFlight, Math.floor(softLimit / 2));
  return Math.max(1, softLimit - reserve);
}
