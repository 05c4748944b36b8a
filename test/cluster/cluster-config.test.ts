import t from 'tap';
import { loadConfig } from '../../src/config/load.js';

// The Redis settings: SESSION_STORE picks the store (unset: from SESSION_PERSISTENCE_ENABLED), a bad URL
// or a handover timeout that cannot outwait the lease is refused at start-up, NODE_ID is fresh per start.

const load = (env: Record<string, string>) => loadConfig({ env, envFile: null });

t.test('SESSION_STORE, and its default from SESSION_PERSISTENCE_ENABLED', async (t) => {
  t.equal(load({}).sessions.store, 'sqlite');
  t.equal(load({ SESSION_PERSISTENCE_ENABLED: 'false' }).sessions.store, 'memory');
  t.equal(load({ SESSION_STORE: 'redis', SESSION_PERSISTENCE_ENABLED: 'false' }).sessions.store, 'redis', 'SESSION_STORE wins');
  t.throws(() => load({ SESSION_STORE: 'postgres' }), { code: 'CONFIG_INVALID' });
});

t.test('REDIS_URL must be redis:// or rediss://, and its value is never repeated in the error', async (t) => {
  t.equal(load({ REDIS_URL: 'redis://:secret@10.0.0.5:6380/2' }).cluster.redisUrl, 'redis://:secret@10.0.0.5:6380/2');
  const error = t.throws(() => load({ REDIS_URL: 'http://:secret@host' }), { code: 'CONFIG_INVALID' }) as Error;
  t.notMatch(error.message, /secret/);
});

t.test('the handover timeout must exceed the lease, or a dead node\'s sessions could never be resumed', async (t) => {
  t.throws(() => load({ REDIS_LEASE_MS: '8000', REDIS_HANDOVER_TIMEOUT_MS: '8000' }), { code: 'CONFIG_INVALID' });
  t.doesNotThrow(() => load({ REDIS_LEASE_MS: '8000', REDIS_HANDOVER_TIMEOUT_MS: '9000' }));
});

t.test('NODE_ID: as set, or fresh at every start', async (t) => {
  t.equal(load({ NODE_ID: 'voxgate-1' }).cluster.nodeId, 'voxgate-1');
  t.not(load({}).cluster.nodeId, load({}).cluster.nodeId);
  t.throws(() => load({ NODE_ID: 'has space' }), { code: 'CONFIG_INVALID' });
});
