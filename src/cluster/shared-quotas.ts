import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { closeSideConnection, openSideConnection } from './side-connection.js';
import type { QuotaName } from '../quotas/quotas.js';

/** What Quotas asks about the other nodes (SESSION_STORE=redis): their counts, as of the last sync. */
export interface QuotaPeers {
  /** What the other nodes count for `key` (`owner:...`, `address:...`) under `quota`. */
  others(quota: QuotaName, key: string): number;
  /** This node's count for `key` under `quota` is now `count` (0: forget it). */
  report(quota: QuotaName, key: string, count: number): void;
}

export interface RedisQuotaPeersOptions {
  url: string;
  prefix: string;
  nodeId: string;
  /** How often counts are pushed and pulled (the registry's interval is a good default). */
  intervalMs: number;
  logger: Logger;
}

const QUOTAS: readonly QuotaName[] = ['connections', 'live_sessions', 'recordings', 'generations_per_minute'];
// A node that stopped syncing (dead) stops counting against others after three intervals.
const TTL_INTERVALS = 3;
const FIRST_CONNECT_WAIT_MS = 2_000;

/**
 * Cross-node quota counts in Redis: each node keeps counting locally (Quotas), pushes the counts that
 * changed to its own hash per quota (`<prefix>quota:<quota>:<nodeId>`, key -> count, with a TTL) and pulls
 * the other nodes' hashes, every intervalMs. A check is then local count + the others' last synced
 * counts: exact on one node, and across nodes late by at most one interval (a burst spread over N nodes
 * within it may pass a limit by what those nodes admitted meanwhile). No Redis on the check path: a quota
 * check never waits for the network, and Redis down leaves each node with its own counts.
 */
export class RedisQuotaPeers implements QuotaPeers {
  readonly #options: RedisQuotaPeersOptions;
  readonly #redis: Redis;
  readonly #timer: NodeJS.Timeout;
  /** Changes not pushed yet: quota -> key -> count. */
  #dirty = new Map<QuotaName, Map<string, number>>();
  /** The other nodes' sums: quota -> key -> count. */
  #others = new Map<QuotaName, Map<string, number>>();
  #syncing: Promise<void> | null = null;
  #failing = false;
  #closed = false;

  constructor(options: RedisQuotaPeersOptions) {
    this.#options = options;
    this.#redis = openSideConnection(options.url);
    this.#redis.on('error', () => {});
    this.#timer = setInterval(() => void this.sync(), options.intervalMs);
    this.#timer.unref();
  }

  others(quota: QuotaName, key: string): number {
    return this.#others.get(quota)?.get(key) ?? 0;
  }

  report(quota: QuotaName, key: string, count: number): void {
    let changes = this.#dirty.get(quota);
    if (!changes) {
      changes = new Map();
      this.#dirty.set(quota, changes);
    }
    changes.set(key, count);
  }

  /** Pushes this node's changes and pulls the others' counts; a second call while one runs joins it. */
  sync(): Promise<void> {
    this.#syncing ??= this.#sync().finally(() => {
      this.#syncing = null;
    });
    return this.#syncing;
  }

  async #sync(): Promise<void> {
    if (this.#closed) return;
    await this.#firstConnection();
    if (this.#redis.status !== 'ready') return;
    const dirty = this.#dirty;
    this.#dirty = new Map();
    try {
      const push = this.#redis.multi();
      for (const quota of QUOTAS) {
        const own = this.#key(quota, this.#options.nodeId);
        for (const [key, count] of dirty.get(quota) ?? []) {
          if (count > 0) push.hset(own, key, count);
          else push.hdel(own, key);
        }
        push.pexpire(own, this.#options.intervalMs * TTL_INTERVALS);
      }
      await push.exec();
      const others = new Map<QuotaName, Map<string, number>>();
      for (const quota of QUOTAS) {
        const sums = new Map<string, number>();
        for (const hashKey of await this.#scan(`${this.#options.prefix}quota:${quota}:*`)) {
          if (hashKey === this.#key(quota, this.#options.nodeId)) continue;
          for (const [key, count] of Object.entries(await this.#redis.hgetall(hashKey))) sums.set(key, (sums.get(key) ?? 0) + Number(count));
        }
        others.set(quota, sums);
      }
      this.#others = others;
      if (this.#failing) this.#options.logger.info('cross-node quota counts synced again');
      this.#failing = false;
    } catch (err) {
      // Not pushed: merged back (newer reports win) for the next sync.
      for (const [quota, changes] of dirty) for (const [key, count] of changes) if (!this.#dirty.get(quota)?.has(key)) this.report(quota, key, count);
      if (!this.#failing) this.#options.logger.warn({ err }, 'cross-node quota sync failed: quotas count this node only until it works');
      this.#failing = true;
    }
  }

  /** At start-up the connection may still be opening: wait for it (bounded); a lost one is not waited for. */
  async #firstConnection(): Promise<void> {
    const status = this.#redis.status;
    if (status !== 'connecting' && status !== 'connect' && status !== 'wait') return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, FIRST_CONNECT_WAIT_MS);
      const redis = this.#redis;
      function done(): void {
        clearTimeout(timer);
        redis.off('ready', done);
        resolve();
      }
      redis.once('ready', done);
    });
  }

  async #scan(pattern: string): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await this.#redis.scan(cursor, 'MATCH', pattern, 'COUNT', 100);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    return keys;
  }

  #key(quota: QuotaName, nodeId: string): string {
    return `${this.#options.prefix}quota:${quota}:${nodeId}`;
  }

  /** Deletes this node's counts (they no longer hold) and closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    await this.#syncing;
    this.#closed = true;
    await closeSideConnection(this.#redis, () => this.#redis.del(...QUOTAS.map((quota) => this.#key(quota, this.#options.nodeId))));
  }
}
