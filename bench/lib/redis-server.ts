// A redis-server (Debian's /usr/bin/redis-server, or REDIS_SERVER) for a benchmark: loopback, a free
// port, its own temporary directory, AOF as asked; stop() kills it and removes the directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort } from '../../test/kit/free-port.js';

export interface BenchRedis {
  url: string;
  /** redis-server's pid (its CPU and memory are part of what the Redis store costs). */
  pid: number;
  /** Resolves if redis-server exits before stop() (a crash under load ends a measurement). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

/** appendfsync: `always` (every write on disk before the reply), `everysec`, or null (no persistence). */
export async function startBenchRedis(appendfsync: 'always' | 'everysec' | null): Promise<BenchRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-bench-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
  if (appendfsync) args.push('--appendonly', 'yes', '--appendfsync', appendfsync);
  const child: ChildProcess = spawn(process.env.REDIS_SERVER ?? '/usr/bin/redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid!,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
