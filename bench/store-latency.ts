// What durable sessions cost per acknowledged event: the same WebSocket workload against in-process
// servers that differ only in their session store (memory, SQLite synchronous=NORMAL, SQLite
// synchronous=FULL), in one run, on this machine. Run by hand: npx tsx bench/store-latency.ts
// Two loads: "saturated" (every session sends its next request as soon as the reply came: measures the
// store's effect on throughput and queueing) and "paced" (each session waits BENCH_PACE_MS between rounds,
// about 1,200 events/s in all, below every variant's capacity: measures the latency an event gains).
// Options (environment): BENCH_SESSIONS (default 200), BENCH_ROUNDS (saturated, default 50),
// BENCH_PACED_ROUNDS (default 20), BENCH_PACE_MS (default 500), BENCH_REPEAT (default 2),
// BENCH_REDIS (default 1: also the Redis store on a local redis-server, AOF appendfsync always and
// everysec; 0: SQLite and memory only).
//
// Each session has its own connection and loops, strictly one request in flight:
//   chosen:  user_selected_response -> message_recorded        (one appendMessage write)
//   setting: response_count_update + get_message_history -> message_history_response
//            (one update write, then a read-only round trip that proves the write was handled)
// The clients run in the same process as the servers (as in the e2e tests), so absolute figures include
// client work; the difference between stores is what the store adds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import WebSocket from 'ws';
import { MemorySessionStore } from '../src/store/memory-store.js';
import { RedisSessionStore } from '../src/store/redis-store.js';
import type { SessionRecord, SessionStore } from '../src/store/session-store.js';
import { SqliteSessionStore } from '../src/store/sqlite-store.js';
import { startTestServer, type TestServer } from '../test/kit/start-server.js';
import { startBenchRedis, type BenchRedis } from './lib/redis-server.js';

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 50);
const PACED_ROUNDS = Number(process.env.BENCH_PACED_ROUNDS ?? 20);
const PACE_MS = Number(process.env.BENCH_PACE_MS ?? 500);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 2);

interface Load {
  name: string;
  rounds: number;
  paceMs: number;
}
const silent = pino({ level: 'silent' });

interface Variant {
  name: string;
  open(dir: string): SessionStore;
}

const VARIANTS: Variant[] = [
  { name: 'memory', open: () => new MemorySessionStore() },
  { name: 'sqlite NORMAL', open: (dir) => new SqliteSessionStore({ dir, logger: silent, synchronous: 'NORMAL' }) },
  { name: 'sqlite FULL', open: (dir) => new SqliteSessionStore({ dir, logger: silent, synchronous: 'FULL' }) },
];

// The Redis store, on its own local redis-server per AOF setting (each open gets its own key prefix).
const redisServers: BenchRedis[] = [];
if (process.env.BENCH_REDIS !== '0') {
  let opened = 0;
  for (const appendfsync of ['always', 'everysec'] as const) {
    const redis = await startBenchRedis(appendfsync);
    redisServers.push(redis);
    VARIANTS.push({
      name: `redis ${appendfsync}`,
      open: () =>
        new RedisSessionStore({
          url: redis.url,
          prefix: `bench${++opened}:`,
          nodeId: 'bench',
          leaseMs: 30_000,
          ttlMs: 3_600_000,
          commandTimeoutMs: 5_000,
          handoverTimeoutMs: 5_000,
          logger: silent,
        }),
    });
  }
}

type Samples = { chosen: number[]; setting: number[] };

/** One connection, one session; `request` sends an event and resolves with the first reply of `type`. */
class BenchClient {
  readonly #socket: WebSocket;
  #waiting: { type: string; resolve: (data: Record<string, unknown>) => void } | null = null;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.on('message', (raw) => {
      const event = JSON.parse(raw.toString()) as { type: string; data: Record<string, unknown> };
      if (event.type === 'error') throw new Error(`server error: ${JSON.stringify(event.data)}`);
      if (this.#waiting && event.type === this.#waiting.type) {
        const { resolve } = this.#waiting;
        this.#waiting = null;
        resolve(event.data);
      }
    });
  }

  static connect(url: string): Promise<BenchClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.once('open', () => resolve(new BenchClient(socket)));
      socket.once('error', reject);
    });
  }

  request(events: Array<{ type: string; data: Record<string, unknown> }>, replyType: string): Promise<Record<string, unknown>> {
    const reply = new Promise<Record<string, unknown>>((resolve) => {
      this.#waiting = { type: replyType, resolve };
    });
    for (const event of events) this.#socket.send(JSON.stringify(event));
    return reply;
  }

  close(): void {
    this.#socket.close();
  }
}

async function runSession(url: string, samples: Samples, load: Load): Promise<void> {
  const client = await BenchClient.connect(url);
  const created = await client.request([{ type: 'conversation_start', data: { response_count: 3, scenario_description: 'bench' } }], 'session_created');
  const sessionId = created.session_id as string;
  // Paced sessions start spread over one pace interval, not all at once.
  if (load.paceMs > 0) await delay(Math.random() * load.paceMs);
  for (let round = 0; round < load.rounds; round++) {
    if (load.paceMs > 0 && round > 0) await delay(load.paceMs);
    let start = performance.now();
    await client.request(
      [{ type: 'user_selected_response', data: { session_id: sessionId, selected_content: `reply ${round} 这是一个回答`, sender: 'user' } }],
      'message_recorded',
    );
    samples.chosen.push(performance.now() - start);
    start = performance.now();
    await client.request(
      [
        { type: 'response_count_update', data: { session_id: sessionId, response_count: 1 + (round % 5) } },
        { type: 'get_message_history', data: { session_id: sessionId } },
      ],
      'message_history_response',
    );
    samples.setting.push(performance.now() - start);
  }
  client.close();
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function measureServer(variant: Variant, load: Load): Promise<Samples & { wallMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-bench-store-'));
  const store = variant.open(dir);
  let server: TestServer | null = null;
  try {
    server = await startTestServer(
      {
        AUTO_SUGGEST: 'false',
        LOG_LEVEL: 'silent',
        MOCK_LLM_DELTA_DELAY_MS: '0',
        EVENT_RATE_PER_SECOND: '100000',
        EVENT_RATE_BURST: '100000',
        MAX_CONNECTIONS: String(SESSIONS + 10),
      },
      { store },
    );
    const url = server.wsUrl();
    const samples: Samples = { chosen: [], setting: [] };
    const start = performance.now();
    await Promise.all(Array.from({ length: SESSIONS }, () => runSession(url, samples, load)));
    return { ...samples, wallMs: performance.now() - start };
  } finally {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The bare store call, without the network: appendMessage on one session, then update on another. */
function measureStoreCalls(variant: Variant, calls: number): { appendUs: number; updateUs: number } {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-bench-store-'));
  const store = variant.open(dir);
  try {
    const now = new Date().toISOString();
    const record = (id: string): SessionRecord => ({
      id, createdAt: now, updatedAt: now, scenarioDescription: null, responseCount: 3, userProfile: null, targetProfile: null,
      historyMessages: [], messages: [], focusedMessageIds: [], modifications: [], recording: null,
    });
    for (let i = 0; i < 100; i++) store.create(record(`s${i}`));
    let start = performance.now();
    for (let i = 0; i < calls; i++) {
      store.appendMessage(`s${i % 100}`, { messageId: `usr_${i}`, sender: 'user', content: 'a chosen reply 这是一个回答', createdAt: now, type: 'selected_response' }, now);
    }
    const appendUs = ((performance.now() - start) * 1000) / calls;
    start = performance.now();
    for (let i = 0; i < calls; i++) store.update(`s${i % 100}`, { responseCount: 1 + (i % 5) }, now);
    const updateUs = ((performance.now() - start) * 1000) / calls;
    return { appendUs, updateUs };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(values: number[]): { p50: number; p95: number; p99: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
}

const ms = (value: number): string => value.toFixed(2);

async function runLoad(load: Load): Promise<void> {
  process.stdout.write(`\n${load.name}: ${SESSIONS} concurrent sessions x ${load.rounds} rounds` +
    `${load.paceMs > 0 ? `, ${load.paceMs} ms between rounds` : ', no pause'}, ${REPEAT} passes (variants interleaved)\n`);
  const all = new Map<string, Samples & { wallMs: number[] }>();
  for (const variant of VARIANTS) all.set(variant.name, { chosen: [], setting: [], wallMs: [] });
  for (let pass = 0; pass < REPEAT; pass++) {
    // Alternate the order so that neither store always runs on a warmer or cooler machine.
    const order = pass % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
    for (const variant of order) {
      const result = await measureServer(variant, load);
      const into = all.get(variant.name)!;
      into.chosen.push(...result.chosen);
      into.setting.push(...result.setting);
      into.wallMs.push(result.wallMs);
    }
  }
  const base = { chosen: summary(all.get('memory')!.chosen), setting: summary(all.get('memory')!.setting) };
  process.stdout.write('round trip latency, ms (p50 / p95 / p99), and the difference to memory at p50 / p95 / p99\n');
  for (const [name, samples] of all) {
    for (const kind of ['chosen', 'setting'] as const) {
      const s = summary(samples[kind]);
      const b = base[kind];
      process.stdout.write(
        `${name.padEnd(14)} ${kind.padEnd(8)} ${ms(s.p50)} / ${ms(s.p95)} / ${ms(s.p99)}` +
          `   diff ${ms(s.p50 - b.p50)} / ${ms(s.p95 - b.p95)} / ${ms(s.p99 - b.p99)}   ratio p50 ${(s.p50 / b.p50).toFixed(2)}   n=${samples[kind].length}\n`,
      );
    }
    const events = SESSIONS * load.rounds * 3;
    const wall = samples.wallMs.reduce((a, b) => a + b, 0) / samples.wallMs.length;
    process.stdout.write(`${name.padEnd(14)} throughput ${(events / (wall / 1000)).toFixed(0)} events/s (${events} events in ${wall.toFixed(0)} ms)\n`);
  }
}

async function main(): Promise<void> {
  await measureServer(VARIANTS[0]!, { name: 'warm-up', rounds: 5, paceMs: 0 }); // JIT, sockets
  await runLoad({ name: 'saturated', rounds: ROUNDS, paceMs: 0 });
  await runLoad({ name: 'paced', rounds: PACED_ROUNDS, paceMs: PACE_MS });

  process.stdout.write('\nbare store call, microseconds per call (10,000 calls, no network)\n');
  for (const variant of VARIANTS) {
    const { appendUs, updateUs } = measureStoreCalls(variant, 10_000);
    process.stdout.write(`${variant.name.padEnd(14)} appendMessage ${appendUs.toFixed(1)} us   update ${updateUs.toFixed(1)} us\n`);
  }
}

try {
  await main();
} finally {
  await Promise.all(redisServers.map((redis) => redis.stop()));
}
