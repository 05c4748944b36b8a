// The server under test: voxgate as its own process (src/main.ts through tsx, as `npm run dev` runs it),
// configured for speech benchmarks, plus what /proc tells about it (CPU time, resident memory).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

import { spawnServer, type SpawnedServer } from '../../test/kit/spawn-server.js';
import { freePort } from '../../test/kit/free-port.js';

export interface SttServerOptions {
  modelDir: string;
  /** MAX_WORKERS: 0 = recognition on the main thread. */
  workers: number;
  /** Extra environment (wins over the defaults below). */
  env?: Record<string, string>;
  /** How long start-up (model check, load, workers) may take. */
  startTimeoutMs?: number;
  /**
   * Whether the clients' URL asks for transcript_partial (and the other extension events). Default true;
   * false is the app's connection: the server then does not read partial texts at all (docs/stt.md).
   */
  partials?: boolean;
}

export interface SttServer {
  pid: number;
  port: number;
  url: string;
  /** utime + stime of the server process, all threads, in seconds. */
  cpuSeconds(): number;
  /** utime + stime per thread (by thread id; the main thread's id is the pid), in seconds. */
  threadCpuSeconds(): Map<number, number>;
  /** VmRSS of the server process in bytes. */
  rssBytes(): number;
  /** GET /api/health (it includes the speech engine's status and active streams). */
  health(): Promise<Record<string, unknown>>;
  stderr(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone. */
  stop(): Promise<void>;
}

/** Clock ticks per second of /proc/<pid>/stat times (100 on every common Linux). */
const CLOCK_TICKS_PER_SECOND: number = (() => {
  const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return Number.isInteger(value) && value > 0 ? value : 100;
})();

export function processCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** CPU seconds of every thread of `pid` (threads that ended meanwhile are missing). */
export function threadCpuSeconds(pid: number): Map<number, number> {
  const threads = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      threads.set(Number(tid), statCpuSeconds(`/proc/${pid}/task/${tid}/stat`));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return threads;
}

function statCpuSeconds(path: string): number {
  const text = readFileSync(path, 'utf8');
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name, state is index 0: utime (field 14) is index 11, stime (field 15) index 12.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

export function processRssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** The 1-minute load average of the machine. */
export function loadAverage1m(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/**
 * OpenBLAS settings of this shell (e.g. OPENBLAS_CORETYPE): libvosk's OpenBLAS reads them, and on this
 * machine's EPYC its own core detection picks kernels about a third slower than OPENBLAS_CORETYPE=Haswell.
 * spawnServer passes only PATH/HOME, so they are forwarded: the server decodes as `npm run dev` from this
 * shell would, and exactly as the tight loop in this process does.
 */
export function blasEnvironment(): Record<string, string> {
  const forwarded: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if ((key.startsWith('OPENBLAS_') || key.startsWith('OMP_')) && value !== undefined) forwarded[key] = value;
  }
  return forwarded;
}

/**
 * Starts voxgate with Vosk on `modelDir`, the mock LLM, no suggestions after recordings, no persistence,
 * warn-level logs and connection/event limits out of the way; resolves once /readyz answers 200.
 */
export async function startSttServer(options: SttServerOptions): Promise<SttServer> {
  const port = await freePort();
  const spawned: SpawnedServer = spawnServer({
    PORT: String(port),
    STT_ENGINE: 'vosk',
    VOSK_MODEL_PATH: options.modelDir,
    MAX_WORKERS: String(options.workers),
    AUTO_SUGGEST: 'false',
    LOG_LEVEL: 'warn',
    SESSION_PERSISTENCE_ENABLED: 'false',
    MAX_CONNECTIONS: '100000',
    MAX_SESSIONS_PER_CONNECTION: '8',
    // Every speaker is a session from 127.0.0.1, and sessions outlive their connection (for resume):
    // the per-address cap (200) would refuse a trial's speakers past the 200th.
    MAX_SESSIONS_PER_ADDRESS: '1000000',
    MAX_SESSIONS: '10000000',
    EVENT_RATE_PER_SECOND: '100000',
    EVENT_RATE_BURST: '100000',
    WEBSOCKET_PING_INTERVAL: '60',
    ...blasEnvironment(),
    ...options.env,
    // e.g. BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the server under load.
  }, { nodeArgs: process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter((arg) => arg !== '') ?? [] });
  const pid = spawned.child.pid;
  if (pid === undefined) throw new Error('the server process did not start');
  const base = `http://127.0.0.1:${port}`;
  const health = async (): Promise<Record<string, unknown>> => {
    const response = await fetch(`${base}/api/health`);
    return { httpStatus: response.status, ...((await response.json()) as Record<string, unknown>) };
  };
  const deadline = Date.now() + (options.startTimeoutMs ?? 90_000);
  let exitedEarly = false;
  void spawned.exited.then(() => {
    exitedEarly = true;
  });
  for (;;) {
    if (exitedEarly) throw new Error(`the server exited during start-up: ${spawned.stderr()}`);
    if (Date.now() > deadline) {
      spawned.kill();
      throw new Error(`the server was not ready within ${options.startTimeoutMs ?? 90_000} ms: ${spawned.stderr()}`);
    }
    // Polling is the only readiness signal at LOG_LEVEL=warn (the "listening" line is info).
    const status = await fetch(`${base}/readyz`).then(
      (response) => response.status,
      () => 0,
    );
    if (status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    pid,
    port,
    // transcript_partial is how the bench clients see progress ('ahead' pacing): ask for the extension events.
    url: options.partials === false ? `ws://127.0.0.1:${port}/ws` : `ws://127.0.0.1:${port}/ws?extensions=all`,
    cpuSeconds: () => processCpuSeconds(pid),
    threadCpuSeconds: () => threadCpuSeconds(pid),
    rssBytes: () => processRssBytes(pid),
    health,
    stderr: () => spawned.stderr(),
    stop: async () => {
      spawned.kill('SIGTERM');
      const timer = setTimeout(() => spawned.kill('SIGKILL'), 5000);
      await spawned.exited;
      clearTimeout(timer);
    },
  };
}

interface SttHealthJson {
  services?: { stt?: { stream_limit?: number | null; active_streams?: number } };
}

/** The server's speech admission as /api/health reports it: the stream limit and the streams open. */
export async function sttHealth(server: SttServer): Promise<{ limit: number | null; open: number }> {
  const stt = ((await server.health()) as SttHealthJson).services?.stt;
  return { limit: stt?.stream_limit ?? null, open: stt?.active_streams ?? 0 };
}
