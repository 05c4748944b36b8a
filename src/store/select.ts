import type { Logger } from 'pino';
import type { Config } from '../config/load.js';
import { MemorySessionStore } from './memory-store.js';
import type { SessionStore } from './session-store.js';
import { SqliteSessionStore } from './sqlite-store.js';

/**
 * The session store for this configuration: SQLite in SESSION_PERSISTENCE_DIR when
 * SESSION_PERSISTENCE_ENABLED=true (sessions survive restarts and crashes), process memory otherwise.
 * A directory or database that cannot be opened throws StoreError naming the path and the cause, and
 * start-up stops: running on without the store the operator asked for would lose sessions silently.
 */
export function createSessionStore(config: Config['sessions'], logger: Logger): SessionStore {
  if (config.persistenceEnabled) return new SqliteSessionStore({ dir: config.dir, logger });
  logger.warn('SESSION_PERSISTENCE_ENABLED=false: sessions live in memory and are lost when the process stops');
  return new MemorySessionStore();
}
