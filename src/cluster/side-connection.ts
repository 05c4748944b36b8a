import { Redis } from 'ioredis';

// The Redis connections of the node registry and the shared quota counts: background bookkeeping that
// must fail fast (no offline queue, no retries, a command timeout) and never keep the process alive.

/** A command on these connections that gets no answer sooner fails (a paused or partitioned Redis). */
const COMMAND_TIMEOUT_MS = 2_000;
const MAX_RECONNECT_DELAY_MS = 1_000;

export function openSideConnection(url: string): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: COMMAND_TIMEOUT_MS,
    retryStrategy: (times) => Math.min(times * 100, MAX_RECONNECT_DELAY_MS),
  });
}

/**
 * Runs `farewell` (deleting this node's keys) if the connection is up, then closes it. Always ends with
 * disconnect(): quit() alone fails without closing while ioredis is reconnecting (Redis gone), and the
 * reconnect timer would then keep the process alive.
 */
export async function closeSideConnection(redis: Redis, farewell: () => Promise<unknown>): Promise<void> {
  try {
    if (redis.status === 'ready') {
      await farewell().catch(() => undefined);
      await redis.quit().catch(() => undefined);
    }
  } finally {
    redis.disconnect();
  }
}
