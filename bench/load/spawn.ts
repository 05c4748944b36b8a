// Child processes of the load test: the server under test, the fake LLM and the client processes, each
// started through bash with a raised open-files limit (`ulimit -n`), since thousands of sockets need
// thousands of descriptors and the default soft limit is often 1024.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

import { PROJECT_ROOT } from '../../src/version.js';
import { freePort } from '../../test/kit/free-port.js';
import { ReadyzGoneError, ReadyzTimeoutError, whenReady } from '../../test/kit/readyz.js';
import { TSX_IMPORT } from '../lib/fork-process.js';
import { readProcText } from './proc-stats.js';


export interface SpawnedNode {
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last ~64 KB of stdout and stderr. */
  output(): string;
  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

const OUTPUT_KEEP_CHARS = 64 * 1024;

/**
 * Runs `node --import tsx <script>` (or plain node for .js) with `ulimit -n openFiles`. `bash -c '... exec'`
 * replaces the shell, so the pid is node's own and /proc/<pid> measures the server itself.
 */
export function spawnNode(script: string, options: {
  args?: string[];
  env: Record<string, string>;
  openFiles: number;
  ipc?: boolean;
  onLine?: (line: string) => void;
}): SpawnedNode {
  const nodeArgs = script.endsWith('.ts') ? ['--import', TSX_IMPORT, script] : [script];
  const stdio: StdioOptions = options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'];
  // Without CAP_SYS_RESOURCE (containers) the soft limit can rise only to the hard one: take what is allowed.
  const raiseLimit = `ulimit -n ${options.openFiles} 2>/dev/null || ulimit -n "$(ulimit -Hn)"`;
  const child = spawn('bash', ['-c', `${raiseLimit}; exec "$0" "$@"`, process.execPath, ...nodeArgs, ...(options.args ?? [])], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...openBlasEnv(), ...options.env },
    stdio,
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${script}`);
  let output = '';
  let partial = '';
  const keep = (chunk: Buffer): void => {
    const text = chunk.toString();
    output = (output + text).slice(-OUTPUT_KEEP_CHARS);
    if (options.onLine) {
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) options.onLine(line);
    }
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const isRunning = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    child,
    pid: child.pid,
    exited,
    output: () => output,
    stop: async (graceMs = 10_000) => {
      if (!isRunning()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (isRunning()) child.kill('SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * The shell's OPENBLAS_* settings (libvosk's OpenBLAS): on this VM OPENBLAS_CORETYPE=Haswell decodes about a
 * third faster than OpenBLAS's own CPU detection, and production should set it too (bench/README.md).
 */
export function openBlasEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] =>
    entry[0].startsWith('OPENBLAS_') && entry[1] !== undefined));
}

/** The soft open-files limit a process runs with (from /proc/<pid>/limits), or null. */
export function openFilesLimit(pid: number): number | null {
  const match = /^Max open files\s+(\d+)/m.exec(readProcText(`/proc/${pid}/limits`) ?? '');
  return match ? Number(match[1]) : null;
}

export interface ServerUnderTest extends SpawnedNode {
  port: number;
  httpUrl: string;
  wsUrl: string;
  /** Log lines at warn (40) or above, by message. */
  warnings: Map<string, number>;
}

/** Starts voxgate (src/main.ts through tsx) on 127.0.0.1 with `env` and waits until /readyz says 200. */
export async function startServer(env: Record<string, string>, options: { openFiles: number; readyTimeoutMs: number }): Promise<ServerUnderTest> {
  // LOG_LEVEL=warn: the server does not log its port, so it is given one that was free a moment ago.
  const port = await freePort();
  const warnings = new Map<string, number>();
  const spawned = spawnNode(join(PROJECT_ROOT, 'src/main.ts'), {
    env: { ...env, HOST: '127.0.0.1', PORT: String(port) },
    openFiles: options.openFiles,
    onLine: (line) => {
      const match = /"level":(\d+).*"msg":"([^"]*)"/.exec(line);
      if (match && Number(match[1]) >= 40) warnings.set(match[2]!, (warnings.get(match[2]!) ?? 0) + 1);
    },
  });
  const httpUrl = `http://127.0.0.1:${port}`;
  let hasExited = false;
  void spawned.exited.then(() => {
    hasExited = true;
  });
  try {
    await whenReady(httpUrl, { timeoutMs: options.readyTimeoutMs, isGone: () => hasExited, intervalMs: 200 });
  } catch (err) {
    if (err instanceof ReadyzGoneError) throw new Error(`server exited before it was ready:\n${spawned.output()}`);
    if (!(err instanceof ReadyzTimeoutError)) throw err;
    await spawned.stop(1000);
    throw new Error(`server not ready after ${options.readyTimeoutMs} ms:\n${spawned.output()}`);
  }
  return { ...spawned, port, httpUrl, wsUrl: `ws://127.0.0.1:${port}/conversation?extensions=all`, warnings };
}
