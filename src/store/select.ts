import type { Logger } from 'pino';
import type { Config } from '../config/load.js';
import { MemorySessionStore } from './memory-store.js';
import { RedisSessionStore } from './redis-store.js';
import type { SessionStore } from './session-store.js';
import { SqliteSessionStore } from './sqlite-store.js';

/**
 * The session store for this configuration (SESSION_STORE): SQLite in SESSION_PERSISTENCE_DIR
 * (sessions survive restarts and crashes of this node), Redis at REDIS_URL (sessions shared by every
 * node, docs/scaling.md), or process memory. A directory or database that cannot be opened throws
 * StoreError naming the path and the cause, and start-up stops: running on without the store the
 * operator asked for would lose sessions silently. An unreachable Redis does not stop start-up: the
 * node reports unavailable (/readyz 503) and refuses new sessions until Redis answers.
 */
export function createSessionStore(config: Pick<Config, 'sessions' | 'cluster'>, logger: Logger): SessionStore {
  const { sessions, cluster } = config;
  switch (sessions.store) {
    case 'sqlite':
      return new SqliteSessionStore({ dir: sessions.dir, logger });
    case 'redis':
      return new RedisSessionStore({
        url: cluster.redisUrl,
        prefix: cluster.keyPrefix,
        nodeId: cluster.nodeId,
        leaseMs: cluster.leaseMs,
        ttlMs: sessions.maxAgeMs,
        commandTimeoutMs: cluster.commandTimeoutMs,
        handoverTimeoutMs: cluster.handoverTimeoutMs,
        logger,
      });
    case 'memory':
      logger.warn('SESSION_STORE=memory: sessions live in memory and are lost when the process stops');
      return new MemorySessionStore();
  }
}
