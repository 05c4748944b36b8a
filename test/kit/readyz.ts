import { setTimeout as delay } from 'node:timers/promises';

export interface WhenReadyOptions {
  /** Give up (ReadyzTimeoutError) after this long (ms). Default: wait as long as the caller does. */
  timeoutMs?: number;
  /** Checked before every try: the process behind the URL is gone (throws ReadyzGoneError). */
  isGone?(): boolean;
  /** Time between tries (ms). Default 100. */
  intervalMs?: number;
}

export class ReadyzTimeoutError extends Error {}
export class ReadyzGoneError extends Error {}

/**
 * Resolves once `GET <httpUrl>/readyz` answers 200. No log line marks readiness (a node is ready only
 * after its first node-registry refresh, a Vosk engine after its workers started), so this asks until
 * it says so; a refused connection means "not listening yet".
 */
export async function whenReady(httpUrl: string, options: WhenReadyOptions = {}): Promise<void> {
  const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
  for (;;) {
    if (options.isGone?.() === true) throw new ReadyzGoneError(`${httpUrl} went away before /readyz said 200`);
    try {
      const response = await fetch(`${httpUrl}/readyz`);
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch (err) {
      if ((err as { cause?: { code?: string } }).cause?.code !== 'ECONNREFUSED') throw err;
    }
    if (Date.now() > deadline) throw new ReadyzTimeoutError(`${httpUrl}/readyz did not say 200 within ${options.timeoutMs} ms`);
    await delay(options.intervalMs ?? 100);
  }
}
