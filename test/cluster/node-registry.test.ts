import { pino } from 'pino';
import t from 'tap';
import { NodeRegistry } from '../../src/cluster/node-registry.js';
import { readiness, type HealthSources } from '../../src/health.js';
import { startRedis } from './redis-kit.js';

// The node registry on a real redis-server: entries carry what the proxy needs, a full or draining node
// is not ready, a node whose Redis is gone is not ready, and a closed node leaves the registry.

const redis = await startRedis(t);

function registry(nodeId: string, facts: { liveStreams: number; streamLimit: number | null; draining: boolean }) {
  const entry = new NodeRegistry({ url: redis.url, prefix: 'registry:', nodeId, address: `${nodeId}:8000`, intervalMs: 60_000, facts: () => facts, logger: pino({ level: 'silent' }) });
  t.teardown(() => entry.close());
  return entry;
}

t.test('every node lists its id, address, streams, limit, load and draining flag', async (t) => {
  const a = registry('node-a', { liveStreams: 3, streamLimit: 12, draining: false });
  const b = registry('node-b', { liveStreams: 0, streamLimit: null, draining: true });
  t.equal(await a.refresh(), true);
  t.equal(await b.refresh(), true);
  const listed = (await a.list()).sort((x, y) => x.id.localeCompare(y.id));
  t.match(listed, [
    { id: 'node-a', address: 'node-a:8000', liveStreams: 3, streamLimit: 12, load: 0.25, draining: false },
    { id: 'node-b', address: 'node-b:8000', liveStreams: 0, streamLimit: null, load: 0, draining: true },
  ]);
  t.same(a.readiness(), { ready: true, reason: null });
  t.match(b.readiness(), { ready: false, reason: 'draining' });
  await b.close();
  t.same((await a.list()).map((entry) => entry.id), ['node-a'], 'a closed node leaves the registry at once');
});

t.test('a full node is not ready, and /readyz says 503 with the reason', async (t) => {
  const facts = { liveStreams: 4, streamLimit: 4, draining: false };
  const full = registry('node-full', facts);
  t.equal(await full.refresh(), true);
  t.match(full.readiness(), { ready: false, reason: /^full/ });
  const sources = {
    version: 'test',
    lifecycle: () => 'ready',
    stt: () => ({ engine: 'mock', status: 'healthy', reason: null, modelPath: null, workers: 0, activeStreams: 4, queueDepth: 0, streamLimit: 4 }),
    llm: () => ({ engine: 'mock', status: 'healthy', reason: null, model: 'mock', inFlight: 0, queued: 0 }),
    sessions: () => ({ status: 'healthy', reason: null, activeSessions: 0, heldBytes: 0, attachedConnections: 0, store: { kind: 'redis', status: 'healthy', path: null, sessions: 0, lastError: null } }),
    requestsInFlight: () => 0,
    transport: () => ({ implementation: 'native', connections: 0, maxConnections: 10, handlerFailures: 0 }),
    cluster: () => full.readiness(),
  } as unknown as HealthSources;
  t.match(readiness(sources), { httpStatus: 503, body: { status: 'unavailable', reason: /^full/ } });
  facts.liveStreams = 3;
  t.match(readiness(sources), { httpStatus: 200, body: { status: 'ready' } }, 'ready again once a stream ended');
});

t.test('Redis gone: the refresh fails and the node is not ready', async (t) => {
  const own = await startRedis(t);
  const entry = new NodeRegistry({ url: own.url, prefix: 'registry:', nodeId: 'node-c', address: null, intervalMs: 60_000, facts: () => ({ liveStreams: 0, streamLimit: null, draining: false }), logger: pino({ level: 'silent' }) });
  t.teardown(() => entry.close());
  t.equal(await entry.refresh(), true);
  await own.stop();
  t.equal(await entry.refresh(), false);
  t.match(entry.readiness(), { ready: false, reason: /registry/ });
});
