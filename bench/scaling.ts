// Scaling out on Redis (issue 17), on this machine: real voxgate processes (src/main.ts through tsx,
// mock STT and LLM) on one local redis-server (AOF appendfsync always).
//   1. failover: BENCH_FAILOVER_SESSIONS sessions live on node A; A is SIGKILLed; their clients reconnect
//      to node B at once and send session_resume. Time from the kill to each session_restored (the lease
//      must expire first: REDIS_LEASE_MS), and the same with A alive (handover, no expiry to wait for).
//   2. throughput: BENCH_SESSIONS sessions loop user_selected_response -> message_recorded for
//      BENCH_ROUNDS rounds against one node, then spread over two nodes (alternating, as leastconn would
//      with equal connections; no proxy in the path: HAProxy is not installed here). Both nodes share the
//      same cores, so this shows what a second process on the same box gives, not what a second box gives.
// Run: npx tsx bench/scaling.ts (bench/README.md). Options (environment): BENCH_FAILOVER_SESSIONS (20),
// BENCH_SESSIONS (40), BENCH_ROUNDS (25), BENCH_LEASE_MS (2000).
import { performance } from 'node:perf_hooks';
import { spawnServer, type SpawnedServer } from '../test/kit/spawn-server.js';
import { TestClient } from '../test/kit/ws-client.js';
import { startBenchRedis, type BenchRedis } from './lib/redis-server.js';

const FAILOVER_SESSIONS = Number(process.env.BENCH_FAILOVER_SESSIONS ?? 20);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 40);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 25);
const LEASE_MS = Number(process.env.BENCH_LEASE_MS ?? 2_000);

let prefixes = 0;
const servers: SpawnedServer[] = [];
const clients: TestClient[] = [];

async function startNodes(redis: BenchRedis, count: number): Promise<Array<{ server: SpawnedServer; url: string }>> {
  const prefix = `scaling${++prefixes}:`;
  const nodes = Array.from({ length: count }, (_, i) => {
    const server = spawnServer({
      SESSION_STORE: 'redis',
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: prefix,
      NODE_ID: `node-${i + 1}`,
      REDIS_LEASE_MS: String(LEASE_MS),
      REDIS_HANDOVER_TIMEOUT_MS: String(LEASE_MS * 4),
      STT_ENGINE: 'mock',
      AUTO_SUGGEST: 'false',
      MOCK_LLM_DELTA_DELAY_MS: '0',
      // info: spawnServer learns the port from the "voxgate listening" line.
      LOG_LEVEL: 'info',
      EVENT_RATE_PER_SECOND: '100000',
      EVENT_RATE_BURST: '100000',
      MAX_SESSIONS_PER_ADDRESS: '1000000',
    });
    servers.push(server);
    return server;
  });
  const ports = await Promise.all(nodes.map((server) => server.port));
  return nodes.map((server, i) => ({ server, url: `ws://127.0.0.1:${ports[i]}/conversation` }));
}

async function connect(url: string): Promise<TestClient> {
  const client = await TestClient.connect(url);
  clients.push(client);
  return client;
}

async function chosen(client: TestClient, sessionId: string, content: string): Promise<void> {
  client.send('user_selected_response', { session_id: sessionId, selected_content: content, sender: 'user' });
  await client.waitFor((e) => (e.type === 'message_recorded' || e.type === 'error') && e.data.session_id === sessionId, 60_000);
}

function summary(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
  return `p50 ${at(50).toFixed(0)} / p99 ${at(99).toFixed(0)} / max ${sorted.at(-1)!.toFixed(0)} ms (n=${sorted.length})`;
}

async function failover(redis: BenchRedis, kill: boolean): Promise<void> {
  const [a, b] = await startNodes(redis, 2);
  const ids: string[] = [];
  for (let i = 0; i < FAILOVER_SESSIONS; i++) {
    const client = await connect(a!.url);
    const id = await client.startConversation({ response_count: 1 });
    await chosen(client, id, `before ${i}`);
    ids.push(id);
  }
  const onB = await Promise.all(ids.map(() => connect(b!.url)));
  const start = performance.now();
  if (kill) a!.server.kill('SIGKILL');
  const times = await Promise.all(
    ids.map(async (id, i) => {
      const client = onB[i]!;
      client.send('session_resume', { session_id: id });
      const reply = await client.waitFor((e) => (e.type === 'session_restored' || e.type === 'error') && e.data.session_id === id, 60_000);
      if (reply.type === 'error') throw new Error(`resume failed: ${JSON.stringify(reply.data)}`);
      return performance.now() - start;
    }),
  );
  process.stdout.write(`${kill ? 'node A SIGKILLed' : 'node A alive (handover)'}: ${FAILOVER_SESSIONS} sessions restored on node B: ${summary(times)}\n`);
  for (const { server } of [a!, b!]) server.kill('SIGKILL');
}

async function throughput(redis: BenchRedis, nodeCount: number): Promise<void> {
  const nodes = await startNodes(redis, nodeCount);
  const latencies: number[] = [];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: SESSIONS }, async (_, i) => {
      const client = await connect(nodes[i % nodeCount]!.url);
      const id = await client.startConversation({ response_count: 1 });
      for (let round = 0; round < ROUNDS; round++) {
        const t0 = performance.now();
        await chosen(client, id, `reply ${round} 这是一个回答`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const wallMs = performance.now() - start;
  process.stdout.write(
    `${nodeCount} node(s): ${SESSIONS} sessions x ${ROUNDS} acknowledged messages: ${(SESSIONS * ROUNDS / (wallMs / 1000)).toFixed(0)} messages/s; ` +
      `round trip ${summary(latencies)}\n`,
  );
  for (const { server } of nodes) server.kill('SIGKILL');
}

const redis = await startBenchRedis('always');
try {
  process.stdout.write(`scaling bench, ${new Date().toISOString()}, REDIS_LEASE_MS=${LEASE_MS}\n`);
  await failover(redis, true);
  await failover(redis, false);
  await throughput(redis, 1);
  await throughput(redis, 2);
} finally {
  await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
  for (const server of servers) server.kill('SIGKILL');
  await redis.stop();
}
