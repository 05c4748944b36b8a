import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/version.js';

export interface SpawnedServer {
  child: ChildProcess;
  /** Resolves with the bound port once the server logged "voxgate listening". */
  port: Promise<number>;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
  /** Resolves with the first log line (parsed JSON on stdout) matching `predicate`, including lines already written. */
  logLine(predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

/**
 * Runs `src/main.ts` in a child process exactly as `npm run dev` would (through tsx), with only the
 * given environment (plus PATH/HOME and a fresh data directory), from a working directory without a .env
 * file unless `cwd` says.
 */
export function spawnServer(
  env: Record<string, string>,
  options: { cwd?: string; openFilesLimit?: number; nodeArgs?: readonly string[] } = {},
): SpawnedServer {
  // tsx resolved here, so that the child finds it from any working directory.
  const nodeArgs = [...(options.nodeArgs ?? []), '--import', import.meta.resolve('tsx'), join(PROJECT_ROOT, 'src/main.ts')];
  const [command, args] =
    options.openFilesLimit === undefined
      ? [process.execPath, nodeArgs]
      : ['prlimit', [`--nofile=${options.openFilesLimit}`, '--', process.execPath, ...nodeArgs]];
  const child = spawn(command, args, {
    cwd: options.cwd ?? PROJECT_ROOT,
    // Each server gets its own data directory unless the test names one (to restart on the same data).
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      // Some machines set these so that libvosk's OpenBLAS picks a kernel that works (and is fast) there.
      ...pick(process.env, ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE']),
      HOST: '127.0.0.1',
      PORT: '0',
      SESSION_PERSISTENCE_DIR: mkdtempSync(join(tmpdir(), 'voxgate-data-')),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const port = new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /"port":(\d+),[^\n]*"msg":"voxgate listening"/.exec(stdout);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening: ${stderr}`)));
  });
  port.catch(() => {});
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  return {
    child,
    port,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    logLine: (predicate) =>
      new Promise((resolve, reject) => {
        let scanned = 0;
        const scan = (): boolean => {
          const end = stdout.lastIndexOf('\n') + 1;
          for (const raw of stdout.slice(scanned, end).split('\n')) {
            if (!raw.trim()) continue;
            const line = JSON.parse(raw) as Record<string, unknown>;
            if (predicate(line)) {
              resolve(line);
              return true;
            }
          }
          scanned = end;
          return false;
        };
        if (scan()) return;
        const onData = (): void => {
          if (scan()) cleanup();
        };
        const onExit = (): void => {
          cleanup();
          reject(new Error('server exited before the log line appeared'));
        };
        const cleanup = (): void => {
          child.stdout!.off('data', onData);
          child.off('exit', onExit);
        };
        // The listener above that collects stdout was added first, so `stdout` already holds this chunk.
        child.stdout!.on('data', onData);
        child.once('exit', onExit);
      }),
  };
}

function pick(env: NodeJS.ProcessEnv, keys: readonly string[]): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const key of keys) if (env[key] !== undefined) picked[key] = env[key];
  return picked;
}
