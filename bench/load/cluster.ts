// What the load test's users connect to: one voxgate process (the default), or a cluster setup of
// `--cluster` (issue 17): N voxgate nodes with SESSION_STORE=redis on one fresh local redis-server (AOF
// `appendfsync always`, as deploy/compose-cluster.yml), and with `+haproxy` the SHIPPED deploy/haproxy.cfg
// in front of them (its bind and server lines rewritten by test/kit/proxy-configs.ts, as the proxy test does).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { freePort } from '../../test/kit/free-port.js';
import { HAPROXY, HAPROXY_READY, haproxyArgs, writeHaproxyConfig } from '../../test/kit/proxy-configs.js';
import { startBenchRedis, type BenchRedis } from '../lib/redis-server.js';
import { readProcText } from './proc-stats.js';
import { startServer, type ServerUnderTest } from './spawn.js';

export interface ClusterSetup {
  nodes: number;
  /** The users connect through HAProxy (deploy/haproxy.cfg) instead of to the node itself. */
  haproxy: boolean;
  /** As written on the command line: `1`, `1+haproxy`, `2+haproxy`. */
  label: string;
}

/** Most nodes a setup may run: the shipped haproxy.cfg names voxgate-1 and voxgate-2. */
const MAX_NODES = 2;

/**
 * `--cluster 1,2+haproxy`: one setup per entry, run one after the other with the same users and steps.
 * `N` is N nodes the users connect to directly (only N = 1: something must spread the users), `N+haproxy`
 * N nodes behind the shipped HAProxy config. Every setup uses the Redis store.
 */
export function parseClusterSetups(text: string): ClusterSetup[] {
  const setups = text.split(',').map((part) => part.trim()).filter((part) => part !== '').map((label) => {
    const match = /^(\d+)(\+haproxy)?$/.exec(label);
    const nodes = match ? Number(match[1]) : Number.NaN;
    if (!match || nodes < 1 || nodes > MAX_NODES) throw new Error(`--cluster: expected entries like 1, 1+haproxy, 2+haproxy (1-${MAX_NODES} nodes), got ${JSON.stringify(label)}`);
    const haproxy = match[2] !== undefined;
    if (nodes > 1 && !haproxy) throw new Error(`--cluster: ${label}: ${nodes} nodes need the proxy to share the users (${nodes}+haproxy)`);
    return { nodes, haproxy, label };
  });
  if (setups.length === 0) throw new Error('--cluster: no setup given');
  return setups;
}

export function describeSetup(setup: ClusterSetup): string {
  return `${setup.nodes} node${setup.nodes > 1 ? 's' : ''}${setup.haproxy ? ' behind HAProxy' : ''}, Redis store`;
}

/** What the users connect to, and the processes whose CPU and memory a step measures. */
export interface Target {
  wsUrl: string;
  /** The voxgate processes. */
  nodes: ServerUnderTest[];
  redisPid: number | null;
  /** HAProxy's master and its worker (the worker, a child of the master, does the proxying); [] without. */
  proxyPids(): number[];
  /** Node log lines at warn or above, by message, summed over the nodes. */
  warnings(): Record<string, number>;
  /** HAProxy's lines about a node's state (UP, DOWN, DRAIN), with the time they were read. */
  proxyEvents: string[];
  /** Resolves with a description once any process of the target exits before stop(). */
  exited: Promise<string>;
  stop(): Promise<void>;
}

export interface TargetOptions {
  openFiles: number;
  readyTimeoutMs: number;
  /** A directory of the run: each node gets its own subdirectory (SESSION_PERSISTENCE_DIR). */
  dataDir: string;
}

/** HAProxy's maxconn here: two descriptors per proxied connection, within the machine's hard limit. */
function proxyMaxConnections(): number {
  const hard = /^Max open files\s+\S+\s+(\d+|unlimited)/m.exec(readProcText('/proc/self/limits') ?? '')?.[1];
  const shipped = 20_000;
  if (hard === undefined || hard === 'unlimited') return shipped;
  return Math.max(100, Math.min(shipped, Math.floor((Number(hard) - 200) / 2)));
}

const PROXY_OUTPUT_KEEP_CHARS = 64 * 1024;
const PROXY_EVENTS_KEPT = 100;

interface RunningProxy {
  child: ChildProcess;
  port: number;
  events: string[];
  exited: Promise<string>;
  output(): string;
  stop(): Promise<void>;
}

async function startHaproxy(nodes: ReadonlyArray<{ name: string; port: number; agentPort: number }>, readyTimeoutMs: number): Promise<RunningProxy> {
  if (!existsSync(HAPROXY)) throw new Error(`--cluster ...+haproxy: ${HAPROXY} is missing (Debian package haproxy, or set HAPROXY)`);
  const port = await freePort();
  // `1+haproxy`: the file's voxgate-2 line is commented out (one node behind the proxy).
  const configFile = writeHaproxyConfig(port, nodes, { dropOthers: true });
  const child = spawn(HAPROXY, haproxyArgs(configFile, proxyMaxConnections()), { stdio: ['ignore', 'pipe', 'pipe'] });
  const exitedRaw = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let output = '';
  let partial = '';
  let ready = false;
  let onReady: () => void = () => {};
  const isReady = new Promise<void>((resolve) => (onReady = resolve));
  const events: string[] = [];
  let lastEvent = '';
  const started = Date.now();
  const read = (chunk: Buffer): void => {
    const text = chunk.toString();
    output = (output + text).slice(-PROXY_OUTPUT_KEEP_CHARS);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!ready && HAPROXY_READY.test(line)) {
        ready = true;
        onReady();
      }
      // e.g. "Server voxgate_nodes/voxgate-1 is DOWN, reason: Layer7 wrong status, code: 503, ...", or a
      // failed check (option log-health-checks). HAProxy prints each twice (its own warning and the log
      // line): keep one.
      const event = line.replace(/^\[\w+\]\s+\(\d+\) : /, '').trim();
      if (/voxgate_nodes\/voxgate-\d+ (?:is |was |failed)/.test(event) && event !== lastEvent && events.length < PROXY_EVENTS_KEPT) {
        lastEvent = event;
        events.push(`+${((Date.now() - started) / 1000).toFixed(1)} s ${event}`);
      }
    }
  };
  child.stdout!.on('data', read);
  child.stderr!.on('data', read);
  const exited = exitedRaw.then(([code, signal]) => `haproxy exited (code ${code}, signal ${signal}): ${output.slice(-2000)}`);
  await Promise.race([
    isReady,
    exited.then((reason) => {
      throw new Error(reason);
    }),
    delay(readyTimeoutMs, undefined, { ref: false }).then(() => {
      throw new Error(`haproxy not ready after ${readyTimeoutMs} ms: ${output.slice(-2000)}`);
    }),
  ]);
  const isRunning = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    child,
    port,
    events,
    exited,
    output: () => output,
    stop: async () => {
      if (isRunning()) {
        // SIGTERM: the master stops its worker and exits; SIGKILL only if it hangs.
        child.kill('SIGTERM');
        const timer = setTimeout(() => {
          if (isRunning()) child.kill('SIGKILL');
        }, 5000);
        await exitedRaw;
        clearTimeout(timer);
      }
      await rm(dirname(configFile), { recursive: true, force: true });
    },
  };
}

/** The pids listed as children of `pid` (/proc/<pid>/task/<pid>/children), or [] when it is gone. */
function childrenOf(pid: number): number[] {
  const text = readProcText(`/proc/${pid}/task/${pid}/children`) ?? '';
  return text.split(' ').filter((part) => part.trim() !== '').map(Number);
}

function mergeWarnings(nodes: readonly ServerUnderTest[]): Record<string, number> {
  const merged: Record<string, number> = {};
  for (const node of nodes) for (const [message, count] of node.warnings) merged[message] = (merged[message] ?? 0) + count;
  return merged;
}

/** One voxgate process with `env`: the load test's classic target. */
export async function startSingleServer(env: Record<string, string>, options: TargetOptions): Promise<Target> {
  const server = await startServer(env, { openFiles: options.openFiles, readyTimeoutMs: options.readyTimeoutMs });
  let stopping = false;
  return {
    wsUrl: server.wsUrl,
    nodes: [server],
    redisPid: null,
    proxyPids: () => [],
    warnings: () => mergeWarnings([server]),
    proxyEvents: [],
    exited: server.exited.then(({ code, signal }) => (stopping ? new Promise<string>(() => {}) : `server exited (code ${code}, signal ${signal})`)),
    stop: async () => {
      stopping = true;
      await server.stop(10_000);
    },
  };
}

/** A fresh redis-server, the setup's nodes on it, and HAProxy in front of them if asked. */
export async function startCluster(setup: ClusterSetup, env: Record<string, string>, options: TargetOptions): Promise<Target> {
  let redis: BenchRedis | null = null;
  const nodes: ServerUnderTest[] = [];
  let proxy: RunningProxy | null = null;
  let stopping = false;
  const stop = async (): Promise<void> => {
    stopping = true;
    await proxy?.stop();
    await Promise.all(nodes.filter((node) => node !== undefined).map((node) => node.stop(10_000)));
    await redis?.stop();
  };
  try {
    redis = await startBenchRedis('always');
    const redisUrl = redis.url;
    const names = Array.from({ length: setup.nodes }, (_, i) => `voxgate-${i + 1}`);
    const agentPorts = await Promise.all(names.map(() => freePort()));
    const started = await Promise.allSettled(names.map(async (name, i) => {
      const dataDir = join(options.dataDir, name);
      await mkdir(dataDir, { recursive: true });
      const node = await startServer({
        ...env,
        SESSION_STORE: 'redis',
        REDIS_URL: redisUrl,
        REDIS_KEY_PREFIX: 'load:',
        NODE_ID: name,
        NODE_AGENT_PORT: String(agentPorts[i]),
        SESSION_PERSISTENCE_DIR: dataDir,
      }, { openFiles: options.openFiles, readyTimeoutMs: options.readyTimeoutMs });
      nodes[i] = node; // by index, so nodes[i] is NODE_ID voxgate-<i+1> whichever became ready first
      return node;
    }));
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    if (setup.haproxy) {
      proxy = await startHaproxy(nodes.map((node, i) => ({ name: names[i]!, port: node.port, agentPort: agentPorts[i]! })), options.readyTimeoutMs);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const proxyPid = proxy?.child.pid;
  const whenExited = [
    redis.exited.then(({ code, signal }) => `redis-server exited (code ${code}, signal ${signal})`),
    ...nodes.map((node, i) => node.exited.then(({ code, signal }) => `node voxgate-${i + 1} exited (code ${code}, signal ${signal})`)),
    ...(proxy ? [proxy.exited] : []),
  ];
  const wsUrl = proxy ? `ws://127.0.0.1:${proxy.port}/conversation?extensions=all` : nodes[0]!.wsUrl;
  return {
    wsUrl,
    nodes,
    redisPid: redis.pid,
    proxyPids: () => (proxyPid === undefined ? [] : [proxyPid, ...childrenOf(proxyPid)]),
    warnings: () => mergeWarnings(nodes),
    proxyEvents: proxy?.events ?? [],
    // A process that exits because stop() stopped it is not news: only the first exit before that counts.
    exited: Promise.race(whenExited).then((reason) => (stopping ? new Promise<string>(() => {}) : reason)),
    stop,
  };
}
