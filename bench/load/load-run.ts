// One load run: a fresh server, the fake LLM and K client processes; N users ramped up step by step;
// samples gathered over IPC and summarised per step with the server's CPU and memory.
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { PROJECT_ROOT } from '../../src/version.js';
import { METRICS, type Failure, type FromUserWorker, type MetricName, type Sample, type ToUserWorker } from './messages.js';
import type { PreparedModel } from './model.js';
import { CpuWindow, loadAverage1m, rssBytes } from './proc-stats.js';
import { epochNow } from './sim-user.js';
import { describeSetup, startCluster, startSingleServer, type ClusterSetup, type Target } from './cluster.js';
import { openFilesLimit, spawnNode, type SpawnedNode } from './spawn.js';
import { capacity, percentiles, type CapacityRule, type StepResult } from './stats.js';

export interface LoadRunOptions {
  label: string;
  /** Extra server environment (wins over the bench defaults), e.g. { MAX_WORKERS: '0' }. */
  serverEnv: Record<string, string>;
  audio: 'base64' | 'binary';
  model: PreparedModel;
  steps: number[];
  stepSeconds: number;
  warmupSeconds: number;
  staggerSeconds: number;
  processes: number;
  thinkMs: number;
  timeoutMs: number;
  minWords: number;
  maxWords: number;
  responseCount: number;
  seed: number;
  llmFirstTokenMs: number;
  llmTokenIntervalMs: number;
  openFiles: number;
  capacityRule: CapacityRule;
  /** A cluster setup of `--cluster` (nodes on Redis, maybe behind HAProxy); null: one server as before. */
  cluster: ClusterSetup | null;
  log: (line: string) => void;
}

export interface LoadRunResult {
  label: string;
  startedAt: string;
  audio: 'base64' | 'binary';
  model: string;
  serverEnv: Record<string, string>;
  settings: {
    stepSeconds: number;
    warmupSeconds: number;
    staggerSeconds: number;
    processes: number;
    thinkMs: number;
    timeoutMs: number;
    words: string;
    llmFirstTokenMs: number;
    llmTokensPerSecond: number;
    freshServerPerStep: boolean;
  };
  steps: StepResult[];
  capacity: { rule: string; users: number | null; firstFailing: { users: number; reason: string } | null };
  /** The cluster setup (`--cluster`), e.g. "2 nodes behind HAProxy, Redis store"; null: one server. */
  setup: string | null;
  /** Summed over the nodes. */
  serverIdleRssMiB: number;
  /** HAProxy's lines about the nodes' state during the run (a full or draining node goes DOWN/DRAIN). */
  proxyEvents: string[];
  /** Soft open-files limits the server and the client processes ran with. */
  openFilesLimit: { server: number | null; clients: number | null };
  serverWarnings: Record<string, number>;
  /** Set when the run ended early (server exit, client process lost). */
  aborted: string | null;
}

const MiB = 1024 * 1024;
const RSS_SAMPLE_MS = 1000;
const READY_TIMEOUT_MS = 60_000;

/** The server configuration every run starts from (section 5 of issue 7). */
export function benchServerEnv(model: PreparedModel, llmBaseUrl: string, dataDir: string): Record<string, string> {
  return {
    STT_ENGINE: 'vosk',
    VOSK_MODEL_PATH: model.dir,
    OPENROUTER_BASE_URL: llmBaseUrl,
    OPENROUTER_API_KEY: 'bench',
    SESSION_PERSISTENCE_DIR: dataDir,
    LOG_LEVEL: 'warn',
    MAX_CONNECTIONS: '1000000',
    EVENT_RATE_PER_SECOND: '100000',
    EVENT_RATE_BURST: '100000',
    SHUTDOWN_DRAIN_MS: '500',
  };
}

/** Parses `KEY=value KEY2=value2` (or comma-separated) into an environment. */
export function parseEnvSpec(spec: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const part of spec.split(/[\s,]+/).filter((p) => p !== '')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`not KEY=value: ${JSON.stringify(part)}`);
    env[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return env;
}

export async function startFakeLlm(firstTokenMs: number, tokenIntervalMs: number, openFiles: number): Promise<{ process: SpawnedNode; baseUrl: string }> {
  let resolveUrl: (url: string) => void = () => {};
  const url = new Promise<string>((resolve) => {
    resolveUrl = resolve;
  });
  const child = spawnNode(join(PROJECT_ROOT, 'bench/load/fake-llm.ts'), {
    args: ['--first-token-ms', String(firstTokenMs), '--token-interval-ms', String(tokenIntervalMs)],
    env: {},
    openFiles,
    onLine: (line) => {
      const match = /^FAKE_LLM_URL (\S+)/.exec(line);
      if (match) resolveUrl(match[1]!);
    },
  });
  const baseUrl = await Promise.race([
    url,
    child.exited.then(() => {
      throw new Error(`fake LLM exited:\n${child.output()}`);
    }),
    delay(READY_TIMEOUT_MS, undefined, { ref: false }).then(() => {
      throw new Error('fake LLM did not start');
    }),
  ]);
  return { process: child, baseUrl };
}

function usersOfProcess(totalUsers: number, processIndex: number, processCount: number): number {
  return Math.max(0, Math.floor((totalUsers - processIndex + processCount - 1) / processCount));
}

interface StepWindow {
  users: number;
  stepStart: number;
  windowStart: number;
  windowEnd: number;
  stepEnd: number;
  serverCpu: number;
  serverCpuByNode: number[];
  redisCpu: number | null;
  proxyCpu: number | null;
  connectionsByNode: Array<number | null>;
  clientCpu: number;
  fakeLlmCpu: number;
  rssMax: number;
  rssEnd: number;
  loadAverage: number;
}

export async function runLoad(options: LoadRunOptions): Promise<LoadRunResult> {
  const { log } = options;
  const startedAt = new Date().toISOString();
  const dataDir = await mkdtemp(join(tmpdir(), 'voxgate-load-data-'));
  const fake = await startFakeLlm(options.llmFirstTokenMs, options.llmTokenIntervalMs, options.openFiles);
  let server: Target | null = null;
  const workers: SpawnedNode[] = [];
  const samples: Sample[] = [];
  const failures: Failure[] = [];
  const turnsAt: Array<[number, number]> = [];
  const wrongExamples: Array<[number, string]> = [];
  let aborted: string | null = null;
  const windows: StepWindow[] = [];
  const serverEnv = { ...benchServerEnv(options.model, fake.baseUrl, dataDir), ...options.serverEnv };
  const autoSuggest = !/^(false|0|no|off)$/i.test(serverEnv.AUTO_SUGGEST ?? 'true');
  try {
    const targetOptions = { openFiles: options.openFiles, readyTimeoutMs: READY_TIMEOUT_MS, dataDir };
    server = options.cluster === null
      ? await startSingleServer(serverEnv, targetOptions)
      : await startCluster(options.cluster, serverEnv, targetOptions);
    void server.exited.then((reason) => {
      aborted ??= reason;
    });
    // Every voxgate process of the target: CPU and RSS are summed over them (the cost of serving the users).
    const serverPids = server.nodes.map((node) => node.pid);
    const rssOfNodes = (): number => serverPids.reduce((sum, pid) => sum + (rssBytes(pid) ?? 0), 0);
    log(`[${options.label}] ${options.cluster ? `${describeSetup(options.cluster)}: ` : ''}server pid ${serverPids.join(', ')} on ${server.wsUrl}; ` +
      `env ${JSON.stringify(options.serverEnv)}; audio ${options.audio}`);
    await delay(1000); // let start-up settle before the idle RSS
    const serverIdleRss = rssOfNodes();

    const stopped: Array<Promise<void>> = [];
    for (let w = 0; w < options.processes; w++) {
      const worker = spawnNode(join(PROJECT_ROOT, 'bench/load/user-worker.ts'), { env: {}, openFiles: options.openFiles, ipc: true });
      workers.push(worker);
      const isReady = new Promise<void>((resolve) => {
        worker.child.on('message', (message: FromUserWorker) => {
          if (message.type === 'ready') resolve();
          else if (message.type === 'samples') {
            samples.push(...message.samples);
            failures.push(...message.failures);
            if (message.turns > 0) turnsAt.push([epochNow(), message.turns]);
            for (const example of message.wrongExamples) wrongExamples.push([epochNow(), example]);
          }
        });
      });
      stopped.push(new Promise<void>((resolve) => {
        worker.child.on('message', (message: FromUserWorker) => {
          if (message.type === 'stopped') resolve();
        });
        void worker.exited.then(() => resolve());
      }));
      void worker.exited.then(({ code }) => {
        if (code !== 0) aborted ??= `client process ${w} exited with ${code}:\n${worker.output()}`;
      });
      const message: ToUserWorker = {
        type: 'config',
        config: {
          wsUrl: server.wsUrl,
          workerIndex: w,
          workerCount: options.processes,
          audio: options.audio,
          frequenciesHz: options.model.frequenciesHz,
          minWords: options.minWords,
          maxWords: options.maxWords,
          thinkMs: options.thinkMs,
          timeoutMs: options.timeoutMs,
          autoSuggest,
          responseCount: options.responseCount,
          seed: options.seed,
        },
      };
      worker.child.send(message);
      await Promise.race([isReady, delay(READY_TIMEOUT_MS, undefined, { ref: false }).then(() => {
        throw new Error(`client process ${w} not ready:\n${worker.output()}`);
      })]);
    }
    const clientPids = workers.map((worker) => worker.pid);

    for (const users of options.steps) {
      if (aborted !== null) break;
      const stepStart = epochNow();
      for (let w = 0; w < workers.length; w++) {
        const message: ToUserWorker = { type: 'users', count: usersOfProcess(users, w, workers.length), staggerMs: options.staggerSeconds * 1000 };
        workers[w]!.child.send(message);
      }
      log(`[${options.label}] step ${users} users: ${options.stepSeconds} s (warm-up ${options.warmupSeconds} s)`);
      await delay(options.warmupSeconds * 1000);
      const windowStart = epochNow();
      const nodeCpu = serverPids.map((pid) => new CpuWindow([pid]));
      const redisCpu = server.redisPid === null ? null : new CpuWindow([server.redisPid]);
      const proxyPids = server.proxyPids();
      const proxyCpu = proxyPids.length === 0 ? null : new CpuWindow(proxyPids);
      const clientCpu = new CpuWindow(clientPids);
      const fakeCpu = new CpuWindow([fake.process.pid]);
      let rssMax = 0;
      const rssTimer = setInterval(() => {
        rssMax = Math.max(rssMax, rssOfNodes());
      }, RSS_SAMPLE_MS);
      await delay((options.stepSeconds - options.warmupSeconds) * 1000);
      clearInterval(rssTimer);
      const rssEnd = rssOfNodes();
      // The server's CPU is its nodes' together.
      const serverCpuByNode = nodeCpu.map((cpu) => cpu.percentOfOneCore());
      const window: StepWindow = {
        users,
        stepStart,
        windowStart,
        windowEnd: epochNow(),
        stepEnd: epochNow(),
        serverCpu: serverCpuByNode.reduce((sum, cores) => sum + cores, 0),
        serverCpuByNode,
        redisCpu: redisCpu?.percentOfOneCore() ?? null,
        proxyCpu: proxyCpu?.percentOfOneCore() ?? null,
        connectionsByNode: [],
        clientCpu: clientCpu.percentOfOneCore(),
        fakeLlmCpu: fakeCpu.percentOfOneCore(),
        rssMax: Math.max(rssMax, rssEnd),
        rssEnd,
        loadAverage: loadAverage1m(),
      };
      // Asked after the window closed (a busy node may take a moment to answer): where the users are.
      window.connectionsByNode = await Promise.all(server.nodes.map((node) => openConnections(node.httpUrl)));
      window.stepEnd = epochNow(); // errors meanwhile still count in this step
      windows.push(window);
    }
    for (const worker of workers) {
      if (worker.child.connected) worker.child.send({ type: 'stop' } satisfies ToUserWorker);
    }
    await Promise.race([Promise.all(stopped), delay(15_000, undefined, { ref: false })]);

    const steps = windows.map((window) => summarise(window, samples, failures, turnsAt, wrongExamples));
    const rule = options.capacityRule;
    return {
      label: options.label,
      startedAt,
      audio: options.audio,
      model: options.model.description,
      serverEnv: options.serverEnv,
      settings: {
        stepSeconds: options.stepSeconds,
        warmupSeconds: options.warmupSeconds,
        staggerSeconds: options.staggerSeconds,
        processes: options.processes,
        thinkMs: options.thinkMs,
        timeoutMs: options.timeoutMs,
        words: `${options.minWords}-${options.maxWords}`,
        llmFirstTokenMs: options.llmFirstTokenMs,
        llmTokensPerSecond: Math.round(1000 / options.llmTokenIntervalMs),
        freshServerPerStep: false,
      },
      steps,
      capacity: { rule: `${rule.metric} ${rule.percentile} < ${rule.belowMs} ms, no errors`, ...capacity(steps, rule) },
      setup: options.cluster ? describeSetup(options.cluster) : null,
      serverIdleRssMiB: Math.round(serverIdleRss / MiB),
      proxyEvents: [...server.proxyEvents],
      openFilesLimit: { server: openFilesLimit(serverPids[0]!), clients: workers[0] ? openFilesLimit(workers[0].pid) : null },
      serverWarnings: server.warnings(),
      aborted,
    };
  } finally {
    await Promise.all(workers.map((worker) => worker.stop(2000)));
    await server?.stop();
    await fake.process.stop(2000);
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** A node's open WebSocket connections (GET /api/health), or null if it did not answer. */
async function openConnections(httpUrl: string): Promise<number | null> {
  try {
    const response = await fetch(`${httpUrl}/api/health`, { signal: AbortSignal.timeout(5000) });
    const body = (await response.json()) as { transport?: { connections?: unknown } };
    return typeof body.transport?.connections === 'number' ? body.transport.connections : null;
  } catch {
    // A node too busy to answer within 5 s, or gone (then the run is aborted anyway): the figure is missing.
    return null;
  }
}

function summarise(window: StepWindow, samples: Sample[], failures: Failure[], turnsAt: Array<[number, number]>,
  wrongExamples: Array<[number, string]>): StepResult {
  const byMetric = METRICS.map(() => [] as number[]);
  for (const [metric, startedAt, ms] of samples) {
    if (startedAt >= window.windowStart && startedAt < window.windowEnd) byMetric[metric]!.push(ms);
  }
  const errors: Record<string, number> = {};
  let errorTotal = 0;
  for (const [kind, at] of failures) {
    if (at >= window.stepStart && at < window.stepEnd) {
      errors[kind] = (errors[kind] ?? 0) + 1;
      errorTotal++;
    }
  }
  let turns = 0;
  for (const [at, count] of turnsAt) if (at >= window.windowStart && at < window.windowEnd) turns += count;
  const latency = Object.fromEntries(METRICS.map((name, index) => [name, percentiles(byMetric[index]!)])) as Record<MetricName, ReturnType<typeof percentiles>>;
  const cores = availableParallelism();
  return {
    users: window.users,
    windowSeconds: Math.round((window.windowEnd - window.windowStart) / 100) / 10,
    turns,
    latency,
    errors,
    errorTotal,
    wrongTranscriptExamples: wrongExamples.filter(([at]) => at >= window.stepStart && at < window.stepEnd).map(([, text]) => text).slice(0, 5),
    serverCpuPercentOfCore: Math.round(window.serverCpu),
    serverCpuPercentOfMachine: Math.round(window.serverCpu / cores),
    serverCpuPercentOfCoreByNode: window.serverCpuByNode.map(Math.round),
    redisCpuPercentOfCore: window.redisCpu === null ? null : Math.round(window.redisCpu),
    proxyCpuPercentOfCore: window.proxyCpu === null ? null : Math.round(window.proxyCpu),
    connectionsByNode: window.connectionsByNode,
    serverRssMaxMiB: Math.round(window.rssMax / MiB),
    serverRssEndMiB: Math.round(window.rssEnd / MiB),
    clientCpuPercentOfCore: Math.round(window.clientCpu),
    fakeLlmCpuPercentOfCore: Math.round(window.fakeLlmCpu),
    loadAverage1m: window.loadAverage,
  };
}

