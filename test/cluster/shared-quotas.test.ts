import { pino } from 'pino';
import t, { type Test } from 'tap';
import { RedisQuotaPeers } from '../../src/cluster/shared-quotas.js';
import { Quotas } from '../../src/quotas/quotas.js';
import { startRedis } from './redis-kit.js';

// Quotas on two nodes sharing one real redis-server: what one node counts refuses on the other after a
// sync (the test calls sync() instead of waiting for the interval), and a release frees it again.

const redis = await startRedis(t);
const subject = { owner: 'sub:alice', remoteAddress: '203.0.113.7', grants: null };

function nodeQuotas(t: Test, nodeId: string, limits: Partial<ConstructorParameters<typeof Quotas>[0]> = {}) {
  const peers = new RedisQuotaPeers({ url: redis.url, prefix: 'quotas:', nodeId, intervalMs: 60_000, logger: pino({ level: 'silent' }) });
  t.teardown(() => peers.close());
  const quotas = new Quotas({ connections: 0, liveSessions: 2, recordings: 0, generationsPerMinute: 3, ...limits }, null, peers);
  return { peers, quotas };
}

t.test('live sessions counted on two nodes add up to one limit', async (t) => {
  const a = nodeQuotas(t, 'node-a');
  const b = nodeQuotas(t, 'node-b');
  await Promise.all([a.peers.sync(), b.peers.sync()]); // connected
  const releaseA = a.quotas.countLiveSession(subject);
  const releaseB = b.quotas.countLiveSession(subject);
  await a.peers.sync();
  await b.peers.sync();
  await a.peers.sync();
  t.throws(() => a.quotas.assertLiveSession(subject), { code: 'QUOTA_EXCEEDED' }, 'one here and one there: the limit of 2 is reached');
  t.throws(() => b.quotas.assertLiveSession(subject), { code: 'QUOTA_EXCEEDED' });
  releaseB();
  await b.peers.sync();
  await a.peers.sync();
  t.doesNotThrow(() => a.quotas.assertLiveSession(subject), 'a release on the other node frees the slot');
  releaseA();
});

t.test('generations per minute across nodes', async (t) => {
  const a = nodeQuotas(t, 'node-c');
  const b = nodeQuotas(t, 'node-d');
  await Promise.all([a.peers.sync(), b.peers.sync()]);
  const now = Date.now();
  b.quotas.takeGeneration(subject, now);
  b.quotas.takeGeneration(subject, now);
  await b.peers.sync();
  await a.peers.sync();
  a.quotas.takeGeneration(subject, now);
  t.throws(() => a.quotas.takeGeneration(subject, now), { code: 'QUOTA_EXCEEDED' }, 'two there and one here: the limit of 3 is reached');
});

t.test('a closed node no longer counts against the others', async (t) => {
  const a = nodeQuotas(t, 'node-e');
  const b = nodeQuotas(t, 'node-f', { liveSessions: 1 });
  await Promise.all([a.peers.sync(), b.peers.sync()]);
  a.quotas.countLiveSession(subject);
  await a.peers.sync();
  await b.peers.sync();
  t.throws(() => b.quotas.assertLiveSession(subject), { code: 'QUOTA_EXCEEDED' });
  await a.peers.close();
  await b.peers.sync();
  t.doesNotThrow(() => b.quotas.assertLiveSession(subject));
});
