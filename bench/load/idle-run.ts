// Idle capacity: how many quiet WebSocket connections, each with an open session, one server holds, and
// what each costs in resident memory. Connections open in batches spread over K client processes; the
// run stops at the target or at the first batch with a failure.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { PROJECT_ROOT } from '../../src/version.js';
import { benchServerEnv, startFakeLlm } from './load-run.js';
import type { FromIdleWorker, ToIdleWorker } from './messages.js';
import type { PreparedModel } from './model.js';
import { CpuWindow, loadAverage1m, rssBytes } from './proc-stats.js';
import { openFilesLimit, spawnNode, startServer, type SpawnedNode } from './spawn.js';

export interface IdleRunOptions {
  target: number;
  batch: number;
  processes: number;
  holdSeconds: number;
  timeoutMs: number;
  model: PreparedModel;
  serverEnv: Record<string, string>;
  openFiles: number;
  log: (line: string) => void;
}

export interface IdleRunResult {
  startedAt: string;
  target: number;
  connectionsHeld: number;
  stoppedBecause: string | null;
  failures: Record<string, number>;
  holdSeconds: number;
  stillOpen: number;
  closedByServer: number;
  quietCpuPercentOfCore: number;
  rssIdleMiB: number;
  rssHeldMiB: number;
  kibPerConnection: number;
  curve: Array<{ connections: number; rssMiB: number; kibPerConnection: number }>;
  serverEnv: Record<string, string>;
  openFilesLimit: { server: number | null; clients: number | null };
  loadAverage1m: number;
}

const MiB = 1024 * 1024;

/** Sends to one client process and waits for its reply of type `type`. */
function request<T extends FromIdleWorker['type']>(worker: SpawnedNode, message: ToIdleWorker, type: T, timeoutMs: number): Promise<Extract<FromIdleWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      worker.child.off('message', onMessage);
      reject(new Error(`client process did not answer ${message.type} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (reply: FromIdleWorker): void => {
      if (reply.type !== type) return;
      clearTimeout(timer);
      worker.child.off('message', onMessage);
      resolve(reply as Extract<FromIdleWorker, { type: T }>);
    };
    worker.child.on('message', onMessage);
    worker.child.send(message);
  });
}

export async function runIdle(options: IdleRunOptions): Promise<IdleRunResult> {
  const { log } = options;
  const startedAt = new Date().toISOString();
  const dataDir = await mkdtemp(join(tmpdir(), 'voxgate-idle-data-'));
  const fake = await startFakeLlm(300, 33, options.openFiles);
  const workers: SpawnedNode[] = [];
  const env = { ...benchServerEnv(options.model, fake.baseUrl, dataDir), ...options.serverEnv };
  const server = await startServer(env, { openFiles: options.openFiles, readyTimeoutMs: 60_000 }).catch(async (err: unknown) => {
    await fake.process.stop(1000);
    throw err;
  });
  try {
    await delay(1000);
    const rssIdle = rssBytes(server.pid) ?? 0;
    for (let w = 0; w < options.processes; w++) {
      const worker = spawnNode(join(PROJECT_ROOT, 'bench/load/idle-worker.ts'), { env: {}, openFiles: options.openFiles, ipc: true });
      workers.push(worker);
      await request(worker, { type: 'config', config: { wsUrl: server.wsUrl, timeoutMs: options.timeoutMs } }, 'ready', 60_000);
    }
    const curve: IdleRunResult['curve'] = [{ connections: 0, rssMiB: Math.round(rssIdle / MiB), kibPerConnection: 0 }];
    const failures: Record<string, number> = {};
    let held = 0;
    let stoppedBecause: string | null = null;
    while (held < options.target) {
      const batch = Math.min(options.batch, options.target - held);
      const shares = workers.map((_, w) => Math.floor(batch / workers.length) + (w < batch % workers.length ? 1 : 0));
      const replies = await Promise.all(workers.map((worker, w) =>
        request(worker, { type: 'open', count: shares[w]! }, 'opened', options.timeoutMs + 30_000)));
      held = replies.reduce((total, reply) => total + reply.open, 0);
      const rss = rssBytes(server.pid);
      if (rss === null) {
        stoppedBecause = 'the server exited';
        break;
      }
      curve.push({ connections: held, rssMiB: Math.round(rss / MiB), kibPerConnection: (rss - rssIdle) / 1024 / Math.max(held, 1) });
      const batchFailures = replies.flatMap((reply) => Object.entries(reply.failures));
      for (const [kind, count] of batchFailures) failures[kind] = (failures[kind] ?? 0) + count;
      log(`[idle] ${held} connections with sessions, server RSS ${Math.round(rss / MiB)} MiB`);
      if (batchFailures.length > 0) {
        stoppedBecause = `failures in the batch: ${batchFailures.map(([kind, count]) => `${kind} x${count}`).join(', ')}`;
        break;
      }
    }
    const rssHeld = rssBytes(server.pid) ?? 0;
    log(`[idle] holding ${held} quiet connections for ${options.holdSeconds} s`);
    const quietCpu = new CpuWindow([server.pid]);
    await delay(options.holdSeconds * 1000);
    const quietCpuPercent = quietCpu.percentOfOneCore();
    const counts = await Promise.all(workers.map((worker) => request(worker, { type: 'count' }, 'count', 30_000)));
    return {
      startedAt,
      target: options.target,
      connectionsHeld: held,
      stoppedBecause,
      failures,
      holdSeconds: options.holdSeconds,
      stillOpen: counts.reduce((total, c) => total + c.open, 0),
      closedByServer: counts.reduce((total, c) => total + c.closedByServer, 0),
      quietCpuPercentOfCore: Math.round(quietCpuPercent * 10) / 10,
      rssIdleMiB: Math.round(rssIdle / MiB),
      rssHeldMiB: Math.round(rssHeld / MiB),
      kibPerConnection: held === 0 ? 0 : (rssHeld - rssIdle) / 1024 / held,
      curve,
      serverEnv: options.serverEnv,
      openFilesLimit: { server: openFilesLimit(server.pid), clients: workers[0] ? openFilesLimit(workers[0].pid) : null },
      loadAverage1m: loadAverage1m(),
    };
  } finally {
    await Promise.all(workers.map(async (worker) => {
      if (worker.child.connected) worker.child.send({ type: 'stop' } satisfies ToIdleWorker);
      await worker.stop(5000);
    }));
    await server.stop(15_000);
    await fake.process.stop(2000);
    await rm(dataDir, { recursive: true, force: true });
  }
}
