// A real redis-server (Debian's /usr/bin/redis-server) for a test: loopback, a free port, its own
// directory; ready when it logs "Ready to accept connections"; killed at teardown.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { freePort } from '../kit/free-port.js';

export interface RedisProcess {
  port: number;
  url: string;
  dir: string;
  child: ChildProcess;
  /** Stops it (SIGKILL unless said) and resolves when it exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and directory (an AOF there is replayed). */
  restart(): Promise<void>;
}

export interface RedisOptions {
  /** `always` for write-before-ack that survives a Redis crash; null: no persistence at all. */
  appendfsync?: 'always' | 'everysec' | null;
}

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';


function launch(port: number, dir: string, options: RedisOptions): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--protected-mode', 'no'];
  if (options.appendfsync) args.push('--appendonly', 'yes', '--appendfsync', options.appendfsync);
  const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('Ready to accept connections')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
    child.once('error', reject);
  });
}

/** Starts a redis-server for this test; it is killed at the test's teardown. */
export async function startRedis(t: Test, options: RedisOptions = {}): Promise<RedisProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-redis-'));
  let port = 0;
  let child: ChildProcess | null = null;
  // The free port may be taken between the probe and redis-server's bind: try a few.
  for (let attempt = 0; child === null; attempt++) {
    port = await freePort();
    try {
      child = await launch(port, dir, options);
    } catch (err) {
      if (attempt >= 4) throw err;
    }
  }
  const redis: RedisProcess = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    child,
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      const current = redis.child;
      if (current.exitCode !== null || current.signalCode !== null) return;
      const exited = once(current, 'exit');
      current.kill(signal);
      await exited;
    },
    async restart() {
      await redis.stop();
      redis.child = await launch(port, dir, options);
    },
  };
  t.teardown(() => redis.stop());
  return redis;
}
