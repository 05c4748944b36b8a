import type { Logger } from 'pino';
import type { Config } from '../config/load.js';
import { MemorySessionStore } from './memory-store.js';
import type { SessionStore } from './session-store.js';

/** The session store for this configuration. */
export function createSessionStore(config: Config['sessions'], logger: Logger): SessionStore {
  if (config.persistenceEnabled) {
    logger.warn('SESSION_PERSISTENCE_ENABLED=true but the durable store is not built yet: sessions live in memory');
  }
  return new MemorySessionStore();
}
