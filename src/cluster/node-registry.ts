import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { closeSideConnection, openSideConnection } from './side-connection.js';

/** What a node publishes about itself (docs/scaling.md#node-registry). */
export interface NodeEntry {
  id: string;
  /** NODE_ADDRESS (host:port the proxy reaches it at), or null. */
  address: string | null;
  liveStreams: number;
  /** Recordings this node can hold with real-time latency (null: not learned yet, or the mock engine). */
  streamLimit: number | null;
  /** liveStreams / streamLimit, 0..1 (0 without a limit). */
  load: number;
  draining: boolean;
  /** ISO-8601 of the refresh. */
  updatedAt: string;
}

export interface NodeRegistryOptions {
  url: string;
  prefix: string;
  nodeId: string;
  address: string | null;
  intervalMs: number;
  /** This node's facts now (read at each refresh). */
  facts(): { liveStreams: number; streamLimit: number | null; draining: boolean };
  logger: Logger;
}

// An entry outlives two missed refreshes: a node that stopped refreshing is gone from the registry
// within three intervals.
const TTL_INTERVALS = 3;
const FIRST_CONNECT_WAIT_MS = 2_000;

/**
 * This node's entry in the Redis node registry: a hash `<prefix>node:<id>` refreshed every intervalMs
 * with a TTL, so a dead node disappears by itself. readiness() is what /readyz adds for the cluster:
 * a full or draining node, or one that cannot reach Redis, answers 503 and the proxy's health check
 * sends new connections elsewhere (connections already open stay).
 */
export class NodeRegistry {
  readonly #options: NodeRegistryOptions;
  readonly #redis: Redis;
  readonly #timer: NodeJS.Timeout;
  readonly #key: string;
  #lastRefreshOk = false;
  #closed = false;

  constructor(options: NodeRegistryOptions) {
    this.#options = options;
    this.#key = `${options.prefix}node:${options.nodeId}`;
    // No offline queue: a refresh while Redis is down fails now and the next interval tries again.
    this.#redis = openSideConnection(options.url);
    this.#redis.on('error', () => {});
    this.#redis.on('ready', () => void this.refresh());
    this.#timer = setInterval(() => void this.refresh(), options.intervalMs);
    this.#timer.unref();
  }

  /** This node's entry as it would be written now. */
  entry(): NodeEntry {
    const { liveStreams, streamLimit, draining } = this.#options.facts();
    return {
      id: this.#options.nodeId,
      address: this.#options.address,
      liveStreams,
      streamLimit,
      load: streamLimit === null || streamLimit === 0 ? 0 : Math.min(1, liveStreams / streamLimit),
      draining,
      updatedAt: new Date().toISOString(),
    };
  }

  /** Writes the entry (with its TTL); false when Redis did not take it. */
  async refresh(): Promise<boolean> {
    if (this.#closed) return false;
    const entry = this.entry();
    try {
      await this.#connected();
      await this.#redis
        .multi()
        .hset(this.#key, { ...entry, address: entry.address ?? '', streamLimit: entry.streamLimit ?? '', draining: String(entry.draining) })
        .pexpire(this.#key, this.#options.intervalMs * TTL_INTERVALS)
        .exec();
      this.#lastRefreshOk = true;
    } catch (err) {
      if (this.#lastRefreshOk) this.#options.logger.warn({ err }, 'node registry refresh failed');
      this.#lastRefreshOk = false;
    }
    return this.#lastRefreshOk;
  }

  /** Resolves once connected; a first connection may take a moment (start-up), a lost one fails at once. */
  async #connected(): Promise<void> {
    const status = this.#redis.status;
    if (status === 'ready' || (status !== 'connecting' && status !== 'connect' && status !== 'wait')) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, FIRST_CONNECT_WAIT_MS);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#redis.once('ready', done);
    });
  }

  /** Every node in the registry now (for operators and bench/scaling.ts). */
  async list(): Promise<NodeEntry[]> {
    await this.#connected();
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await this.#redis.scan(cursor, 'MATCH', `${this.#options.prefix}node:*`, 'COUNT', 100);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    const entries = await Promise.all(keys.map((key) => this.#redis.hgetall(key)));
    return entries.filter((raw) => raw.id !== undefined).map((raw) => ({
      id: raw.id!,
      address: raw.address ? raw.address : null,
      liveStreams: Number(raw.liveStreams),
      streamLimit: raw.streamLimit ? Number(raw.streamLimit) : null,
      load: Number(raw.load),
      draining: raw.draining === 'true',
      updatedAt: raw.updatedAt ?? '',
    }));
  }

  /** /readyz's cluster part: not ready while full, draining, or not registered (Redis unreachable). */
  readiness(): { ready: boolean; reason: string | null } {
    const entry = this.entry();
    if (entry.draining) return { ready: false, reason: 'draining' };
    if (entry.streamLimit !== null && entry.liveStreams >= entry.streamLimit) return { ready: false, reason: `full: ${entry.liveStreams} of ${entry.streamLimit} streams` };
    if (!this.#lastRefreshOk) return { ready: false, reason: 'not in the node registry (Redis unreachable)' };
    return { ready: true, reason: null };
  }

  /** Removes this node's entry (a draining node leaves at once) and closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await closeSideConnection(this.#redis, () => this.#redis.del(this.#key));
  }
}
