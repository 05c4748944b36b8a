// The Redis store's thread: it owns the ioredis connections, the leases this node holds (with their
// fencing epochs) and their renewal, and the handover channel. The main thread's store calls arrive on
// the sync port and are answered before Atomics wakes it; lease work and notices use the async port.
import { workerData } from 'node:worker_threads';
import { Redis, ReplyError } from 'ioredis';
import type {
  AcquireOutcome,
  AsyncRequest,
  RedisWorkerData,
  SyncFailure,
  SyncReply,
  SyncRequest,
  WorkerNotice,
} from './redis-messages.js';
import {
  ACQUIRE_SCRIPT,
  CREATE_SCRIPT,
  DELETE_SCRIPT,
  RELEASE_SCRIPT,
  RENEW_SCRIPT,
  WRITE_SCRIPT,
  sessionKeys,
} from './redis-scripts.js';
import { decodeRecord, metaPairs, messageJson, updateArgs } from './redis-codec.js';
import type { SessionRecord } from './session-store.js';

type Scripted = Redis & {
  vgCreate(...args: Array<string | number>): Promise<number>;
  vgWrite(...args: Array<string | number>): Promise<number>;
  vgDelete(...args: Array<string | number>): Promise<number>;
  vgAcquire(...args: Array<string | number>): Promise<[number, string]>;
  vgRenew(...args: Array<string | number>): Promise<number>;
  vgRelease(...args: Array<string | number>): Promise<number>;
};

const data = workerData as RedisWorkerData;
const signal = new Int32Array(data.signal);
const KEY_COUNT = 8;
// Reconnect quickly at first, then once a second: a restarted Redis is used again within a second.
const MAX_RECONNECT_DELAY_MS = 1_000;
const STATS_INTERVAL_MS = 2_000;
// While another node hands a session over, how often acquire() looks whether the lease is free.
const ACQUIRE_POLL_MS = 100;

/** Fail fast while disconnected: a write that cannot happen now is reported now (no offline queue). */
function connect(): Scripted {
  const client = new Redis(data.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: data.commandTimeoutMs,
    retryStrategy: (times) => Math.min(times * 100, MAX_RECONNECT_DELAY_MS),
    lazyConnect: false,
  }) as Scripted;
  client.defineCommand('vgCreate', { numberOfKeys: KEY_COUNT, lua: CREATE_SCRIPT });
  client.defineCommand('vgWrite', { numberOfKeys: KEY_COUNT, lua: WRITE_SCRIPT });
  client.defineCommand('vgDelete', { numberOfKeys: KEY_COUNT, lua: DELETE_SCRIPT });
  client.defineCommand('vgAcquire', { numberOfKeys: 3, lua: ACQUIRE_SCRIPT });
  client.defineCommand('vgRenew', { numberOfKeys: 2, lua: RENEW_SCRIPT });
  client.defineCommand('vgRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
  return client;
}

const redis = connect();
// Pub/sub needs a connection of its own (a subscribed connection can run nothing else).
const subscriber = new Redis(data.url, { retryStrategy: (times) => Math.min(times * 100, MAX_RECONNECT_DELAY_MS) });
const nodeChannel = `${data.prefix}node:${data.nodeId}`;
/** Sessions whose lease this node holds: id -> fencing epoch. */
const owned = new Map<string, string>();
let closing = false;

function notify(notice: WorkerNotice): void {
  data.asyncPort.postMessage(notice);
}

redis.on('ready', () => notify({ type: 'connection', state: 'ready', error: null }));
redis.on('close', () => {
  if (!closing) notify({ type: 'connection', state: 'down', error: 'connection to Redis closed' });
});
// ioredis emits 'error' for every failed reconnect; the main thread reports state changes, not each one.
redis.on('error', () => {});
subscriber.on('error', () => {});
void subscriber.subscribe(nodeChannel).catch(() => {});
subscriber.on('message', (_channel: string, text: string) => {
  try {
    const { sessionId, by } = JSON.parse(text) as { sessionId: string; by: string };
    if (typeof sessionId === 'string') notify({ type: 'release-requested', sessionId, by: String(by) });
  } catch {
    // Not ours: only voxgate nodes publish on this channel.
  }
});

// --- sync calls ------------------------------------------------------------------------------------

data.syncPort.on('message', (request: SyncRequest) => {
  void handleSync(request).then((reply) => {
    // Post first, then wake: the main thread reads the port as soon as the counter moves.
    data.syncPort.postMessage(reply);
    Atomics.add(signal, 0, 1);
    Atomics.notify(signal, 0);
  });
});

async function handleSync(request: SyncRequest): Promise<SyncReply> {
  try {
    return { id: request.id, ok: true, value: await run(request) };
  } catch (err) {
    return { id: request.id, ok: false, failure: failureOf(err), message: err instanceof Error ? err.message : String(err) };
  }
}

async function run(request: SyncRequest): Promise<unknown> {
  switch (request.op) {
    case 'ping':
      return waitReady(request.waitMs);
    case 'close':
      return close();
    case 'create':
      return create(request.record);
    case 'load':
      return load(request.sessionId);
    case 'update':
      return write(request.sessionId, request.updatedAt, 'update', updateArgs(request.patch));
    case 'appendMessage':
    case 'finishRecording':
      return write(request.sessionId, request.updatedAt, request.op, [messageJson(request.message)]);
    case 'appendModification':
    case 'appendRecordingSegment':
      return write(request.sessionId, request.updatedAt, request.op, [request.text]);
    case 'delete': {
      const removed = await redis.vgDelete(...sessionKeys(data.prefix, request.sessionId), owned.get(request.sessionId) ?? '-', request.sessionId);
      owned.delete(request.sessionId);
      return removed === 1;
    }
    case 'deleteExpired': {
      // Redis expires a session's keys itself (each write renews their TTL), and stats() trims the index
      // of those, so the periodic sweep normally finds nothing here. What it does find (a cut-off
      // earlier than the TTL, as in tests) is deleted, keys and index entry, as the contract says.
      const index = `${data.prefix}index`;
      const ids = await redis.zrangebyscore(index, '-inf', `(${Date.parse(request.before)}`);
      if (ids.length > 0) {
        const transaction = redis.multi().zrem(index, ...ids);
        for (const id of ids) transaction.del(...sessionKeys(data.prefix, id).slice(0, 7));
        await transaction.exec();
      }
      for (const id of ids) owned.delete(id);
      return ids;
    }
  }
}

class Refusal extends Error {
  constructor(readonly failure: SyncFailure, message: string) {
    super(message);
  }
}

function failureOf(err: unknown): SyncFailure {
  if (err instanceof Refusal) return err.failure;
  if (err instanceof ReplyError) {
    const word = (err as Error).message.split(' ', 1)[0];
    if (word === 'FENCED') return 'fenced';
    if (word === 'MISSING') return 'missing';
    if (word === 'EXISTS') return 'exists';
    if (word === 'NOTRECORDING') return 'not-recording';
    return 'internal';
  }
  // Connection closed, offline queue refused, command timeout: Redis is not there for us now.
  return 'unavailable';
}

async function waitReady(waitMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      resolve(false);
    }, waitMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    redis.once('ready', onReady);
  });
}

async function create(record: SessionRecord): Promise<null> {
  const meta = metaPairs(record);
  const lists = [record.historyMessages.map(messageJson), record.messages.map(messageJson), record.modifications, record.recording?.segments ?? []];
  const args: Array<string | number> = [data.nodeId, data.leaseMs, data.ttlMs, Date.parse(record.updatedAt), record.id, meta.length / 2, ...meta];
  for (const list of lists) args.push(list.length, ...list);
  const epoch = await redis.vgCreate(...sessionKeys(data.prefix, record.id), ...args);
  owned.set(record.id, String(epoch));
  return null;
}

async function load(sessionId: string): Promise<SessionRecord | null> {
  if (!owned.has(sessionId)) {
    const outcome = await tryAcquire(sessionId);
    if (outcome.kind === 'missing') return null;
    if (outcome.kind === 'busy') throw new Refusal('busy', `session ${sessionId} is held by node ${outcome.owner}`);
  }
  const keys = sessionKeys(data.prefix, sessionId);
  const results = await redis.multi().hgetall(keys[0]!).lrange(keys[1]!, 0, -1).lrange(keys[2]!, 0, -1).lrange(keys[3]!, 0, -1).lrange(keys[4]!, 0, -1).exec();
  if (results === null) throw new Error('the read transaction was aborted');
  for (const [err] of results) if (err) throw err as Error;
  const [meta, history, messages, modifications, segments] = results.map(([, value]) => value) as [
    Record<string, string>, string[], string[], string[], string[],
  ];
  return decodeRecord(meta, { history, messages, modifications, segments });
}

async function write(sessionId: string, updatedAt: string, op: string, args: string[]): Promise<null> {
  // Without a lease here the script still runs: it answers MISSING for an unknown session and FENCED
  // for one that exists ('-' is never an epoch).
  const epoch = owned.get(sessionId) ?? '-';
  try {
    await redis.vgWrite(
      ...sessionKeys(data.prefix, sessionId),
      epoch,
      `${data.nodeId}:${epoch}`,
      data.leaseMs,
      data.ttlMs,
      updatedAt,
      Date.parse(updatedAt),
      op,
      sessionId,
      ...args,
    );
  } catch (err) {
    if (failureOf(err) === 'fenced') owned.delete(sessionId);
    throw err;
  }
  return null;
}

// --- leases ----------------------------------------------------------------------------------------

type TryAcquire = { kind: 'owned' } | { kind: 'missing' } | { kind: 'busy'; owner: string };

async function tryAcquire(sessionId: string): Promise<TryAcquire> {
  const keys = sessionKeys(data.prefix, sessionId);
  const [status, value] = await redis.vgAcquire(keys[0]!, keys[5]!, keys[6]!, data.nodeId, data.leaseMs);
  if (status === -1) return { kind: 'missing' };
  if (status === 1) {
    owned.set(sessionId, String(value));
    return { kind: 'owned' };
  }
  return { kind: 'busy', owner: value.slice(0, value.lastIndexOf(':')) };
}

/**
 * Takes the session's lease for this node. Held by another node: asks it to hand over (it parks the
 * recording, detaches and releases) and takes the lease once it is free, which is at the latest when a
 * dead owner's lease expires (leaseMs). Gives up after handoverTimeoutMs with `busy`.
 */
async function acquire(sessionId: string, handover: boolean): Promise<AcquireOutcome> {
  const deadline = Date.now() + data.handoverTimeoutMs;
  let asked = false;
  for (;;) {
    let outcome: TryAcquire;
    try {
      outcome = await tryAcquire(sessionId);
    } catch {
      return 'unavailable';
    }
    if (outcome.kind !== 'busy') return outcome.kind;
    if (!handover) return 'busy';
    if (!asked) {
      asked = true;
      await redis.publish(`${data.prefix}node:${outcome.owner}`, JSON.stringify({ sessionId, by: data.nodeId })).catch(() => 0);
    }
    if (Date.now() + ACQUIRE_POLL_MS > deadline || closing) return 'busy';
    await new Promise((resolve) => setTimeout(resolve, ACQUIRE_POLL_MS));
  }
}

async function release(sessionId: string): Promise<void> {
  const epoch = owned.get(sessionId);
  if (epoch === undefined) return;
  owned.delete(sessionId);
  const keys = sessionKeys(data.prefix, sessionId);
  // A failed release only delays the next owner until the lease expires.
  await redis.vgRelease(keys[5]!, `${data.nodeId}:${epoch}`).catch(() => 0);
}

/** Renews every lease this node holds; reports the ones another node took in the meantime. */
async function renewAll(): Promise<void> {
  if (owned.size === 0 || redis.status !== 'ready') return;
  const entries = [...owned];
  const pipeline = redis.pipeline();
  for (const [sessionId, epoch] of entries) {
    const keys = sessionKeys(data.prefix, sessionId);
    (pipeline as unknown as Scripted).vgRenew(keys[5]!, keys[6]!, epoch, `${data.nodeId}:${epoch}`, data.leaseMs);
  }
  const results = await pipeline.exec().catch(() => null);
  if (results === null) return;
  results.forEach(([err, renewed], i) => {
    const [sessionId, epoch] = entries[i]!;
    if (err || renewed !== 0 || owned.get(sessionId) !== epoch) return;
    owned.delete(sessionId);
    notify({ type: 'lost', sessionId });
  });
}

async function stats(): Promise<void> {
  if (redis.status !== 'ready') return;
  const index = `${data.prefix}index`;
  try {
    await redis.zremrangebyscore(index, '-inf', `(${Date.now() - data.ttlMs}`);
    const [sessions, info] = await Promise.all([redis.zcard(index), redis.info('memory')]);
    const usedBytes = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    notify({ type: 'stats', sessions, usedBytes });
  } catch {
    // Reported through the connection state and the store calls that fail.
  }
}

// A lease is renewed three times per lease period: one late renewal (a GC pause, a slow Redis) does
// not lose it.
const renewTimer = setInterval(() => void renewAll(), Math.max(50, Math.floor(data.leaseMs / 3)));
const statsTimer = setInterval(() => void stats(), STATS_INTERVAL_MS);
void stats();

data.asyncPort.on('message', (request: AsyncRequest) => {
  switch (request.op) {
    case 'acquire':
      void acquire(request.sessionId, request.handover).then((outcome) => notify({ type: 'reply', id: request.id, outcome }));
      return;
    case 'release':
      void release(request.sessionId);
      return;
  }
});

async function close(): Promise<null> {
  closing = true;
  clearInterval(renewTimer);
  clearInterval(statsTimer);
  // Leases are released so that other nodes may take these sessions at once, not after expiry.
  await Promise.allSettled([...owned.keys()].map((sessionId) => release(sessionId)));
  // quit() waits for a reconnect that may never come when Redis is down: disconnect then.
  for (const client of [redis, subscriber]) {
    if (client.status === 'ready') await client.quit().catch(() => 'OK');
    else client.disconnect();
  }
  return null;
}
