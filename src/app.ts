import type { Logger } from 'pino';
import { AsrEndpoint, asrPaths } from './asr/endpoint.js';
import { Authenticator } from './auth/authenticator.js';
import type { Config } from './config/load.js';
import { loadDemoFiles } from './demo/routes.js';
import { Dialogue } from './dialogue/event-handlers.js';
import { RecordingService } from './dialogue/recordings.js';
import { RequestManager } from './dialogue/request-manager.js';
import { SessionManager } from './dialogue/session-manager.js';
import { ReplyRunner } from './dialogue/suggestions.js';
import type { Lifecycle } from './health.js';
import type { LlmEngine } from './llm/engine.js';
import { createLlmEngine } from './llm/select.js';
import { flushLogger } from './log.js';
import { InstrumentedStore } from './metrics/instrumented-store.js';
import { MetricsServer } from './metrics/metrics-route.js';
import { Metrics } from './metrics/metrics.js';
import { Quotas } from './quotas/quotas.js';
import { createSessionStore } from './store/select.js';
import { RedisSessionStore } from './store/redis-store.js';
import { NodeRegistry } from './cluster/node-registry.js';
import { AgentCheckServer, agentLine } from './cluster/agent-check.js';
import { RedisQuotaPeers } from './cluster/shared-quotas.js';
import { SessionMovedError } from './errors.js';
import type { SessionStore } from './store/session-store.js';
import type { SttEngine } from './stt/engine.js';
import { createSttEngine } from './stt/select.js';
import { VoskEngine } from './stt/vosk/engine.js';
import { SpeakerModel } from './stt/vosk/speaker-model.js';
import type { VoskStream } from './stt/vosk/stream.js';
import { CloseCode } from './transport/connection.js';
import { EdgeGuard } from './transport/edge-guard.js';
import { assertNativeTransport } from './transport/native-check.js';
import { connectionsWithinLimit, openFilesSoftLimit } from './transport/open-files-limit.js';
import { trustedProxyList } from './transport/client-address.js';
import { HttpServer } from './transport/server.js';
import { WsHandler } from './transport/ws-handler.js';
import { VERSION } from './version.js';

export interface VoxgateParts {
  stt?: SttEngine;
  llm?: LlmEngine;
  store?: SessionStore;
}

export interface Voxgate {
  readonly port: number;
  /** METRICS_PORT's bound port, or null when /metrics is on the main port. */
  readonly metricsPort: number | null;
  readonly stt: SttEngine;
  readonly llm: LlmEngine;
  /** Reads AUTH_API_KEYS_FILE again (main.ts calls it on SIGHUP). */
  reloadCredentials(): { reloaded: boolean; keys: number };
  /** Drains and stops; resolves when everything is closed. A second call joins the first. */
  shutdown(): Promise<void>;
}

/**
 * Builds the pipeline from a Config and starts listening: transport -> protocol -> dialogue -> engines.
 * Engines and the store can be passed in (tests), otherwise they are chosen from the config.
 */
export async function startVoxgate(config: Config, logger: Logger, parts: VoxgateParts = {}): Promise<Voxgate> {
  const transport = assertNativeTransport(config.allowFallbackTransport);
  if (transport === 'fallback') logger.warn('uWebSockets.js runs its pure-JS fallback (ALLOW_FALLBACK_TRANSPORT=true)');

  const maxConnections = connectionLimit(config, logger);
  // Read before anything is opened: an unreadable keys or JWKS file fails start-up with nothing to clean up.
  const auth = new Authenticator(config.auth, logger);
  // Read before anything is opened: a missing page file fails start-up with nothing to clean up.
  const demo = config.demoEnabled ? loadDemoFiles() : null;
  // Loaded once, before anything else is opened: a path libvosk cannot load fails start-up with nothing to clean up.
  const speakerModel = config.asr.enabled && config.asr.speakerModelPath !== null ? SpeakerModel.load(config.asr.speakerModelPath) : null;
  let lifecycle: Lifecycle = 'starting';
  const metrics = new Metrics();
  metrics.collectProcessMetrics();
  // Shared sessions: quotas count across nodes (each node's counts synced through Redis).
  const quotaPeers = config.sessions.store === 'redis'
    ? new RedisQuotaPeers({ url: config.cluster.redisUrl, prefix: config.cluster.keyPrefix, nodeId: config.cluster.nodeId, intervalMs: config.cluster.registryIntervalMs, logger })
    : null;
  const quotas = new Quotas(config.quotas, metrics, quotaPeers);
  const baseStore = parts.store ?? createSessionStore(config, logger);
  const store = new InstrumentedStore(baseStore, metrics);
  // Shared sessions: the Redis store also decides which node serves a session (docs/scaling.md).
  const ownership = baseStore instanceof RedisSessionStore ? baseStore : null;
  let stt: SttEngine;
  try {
    stt = parts.stt ?? (await createSttEngine(config.stt, logger));
  } catch (err) {
    store.close();
    speakerModel?.release();
    await quotaPeers?.close();
    throw err;
  }
  const llm = parts.llm ?? createLlmEngine(config.llm, logger, metrics);
  if (stt instanceof VoskEngine) {
    // Measured on the worker threads, carried to the main thread with each result: nothing is polled.
    stt.on('decoded', (busySeconds) => metrics.sttDecodeSeconds.inc(busySeconds));
    // Workers that came up before this line are counted from the snapshot (same tick: none is missed).
    metrics.sttWorkersStarted.inc(stt.snapshot().slots.filter((slot) => slot.threadId !== null).length);
    stt.on('workerReady', () => metrics.sttWorkersStarted.inc());
    stt.on('workerLost', () => metrics.sttWorkersLost.inc());
  }
  const requests = new RequestManager();
  const sessions = new SessionManager({
    store,
    requests,
    logger,
    maxSessionsPerConnection: config.websocket.maxSessionsPerConnection,
    maxAgeMs: config.sessions.maxAgeMs,
    cleanupIntervalMs: config.sessions.cleanupIntervalMs,
    maxSessionsPerAddress: config.sessions.maxPerAddress,
    maxStoredSessions: config.sessions.maxStored,
    maxMemoryBytes: config.sessions.maxMemoryBytes,
    maxStoreBytes: config.sessions.maxStoreBytes,
    metrics,
    quotas,
    ...(ownership ? { ownership } : {}),
  });
  const dialogue = new Dialogue({
    sessions,
    requests,
    recordings: new RecordingService({ stt, sessions, logger, maxAudioBytesPerRecording: config.dialogue.maxAudioBytesPerRecording, metrics }),
    replies: new ReplyRunner({ llm, sessions, requests, metrics }),
    metrics,
    quotas,
    logger,
    autoSuggest: config.dialogue.autoSuggest,
    orphanedRecordingGraceMs: config.dialogue.orphanedRecordingGraceMs,
    ...(ownership ? { ownership } : {}),
  });
  ownership?.setEvents({
    onReleaseRequested: (sessionId) =>
      dialogue.handOver(sessionId, new SessionMovedError(`session ${sessionId} was handed over to another node`, { details: `session_id: ${sessionId}` }), { park: true }),
    onLeaseLost: (sessionId) =>
      dialogue.handOver(sessionId, new SessionMovedError(`another node took session ${sessionId}`, { details: `session_id: ${sessionId}` }), { park: false }),
  });
  const guard = new EdgeGuard(logger);
  const asr = config.asr.enabled ? { endpoint: asrEndpoint(config, stt, quotas, speakerModel), paths: asrPaths(config.asr.rootPath) } : null;
  const ws = new WsHandler({
    asr,
    dialogue,
    logger,
    guard,
    proxyTrust: { trustAnyPeer: config.trustProxy, trustedProxies: trustedProxyList(config.trustedProxies) },
    auth,
    metrics,
    quotas,
    limits: {
      highWaterBytes: config.websocket.highWaterBytes,
      maxBufferedBytes: config.websocket.maxBufferedBytes,
      slowConsumerTimeoutMs: config.websocket.slowConsumerTimeoutMs,
      eventRatePerSecond: config.websocket.eventRatePerSecond,
      eventRateBurst: config.websocket.eventRateBurst,
    },
    maxMessageBytes: config.websocket.maxMessageBytes,
    pingIntervalSeconds: config.websocket.pingIntervalSeconds,
    maxConnections,
    allowedOrigins: config.allowedOrigins,
    isAcceptingConnections: () => lifecycle === 'ready',
  });
  const registry = ownership
    ? new NodeRegistry({
        url: config.cluster.redisUrl,
        prefix: config.cluster.keyPrefix,
        nodeId: config.cluster.nodeId,
        address: config.cluster.nodeAddress,
        intervalMs: config.cluster.registryIntervalMs,
        facts: () => {
          const sttHealth = stt.health();
          return { liveStreams: sttHealth.activeStreams, streamLimit: sttHealth.streamLimit, draining: lifecycle !== 'ready' };
        },
        logger,
      })
    : null;
  const agent = registry && config.cluster.agentPort !== null ? new AgentCheckServer(() => agentLine(registry.entry(), registry.readiness())) : null;
  const server = new HttpServer({
    ws,
    demo,
    guard,
    metrics: config.metrics.listener === null ? metrics : null,
    allowedOrigins: config.allowedOrigins,
    health: {
      version: VERSION,
      lifecycle: () => lifecycle,
      stt: () => stt.health(),
      llm: () => llm.health(),
      sessions: () => sessions.health(),
      requestsInFlight: () => requests.inFlight,
      transport: () => ({ implementation: transport, connections: ws.connectionCount, maxConnections, handlerFailures: guard.failureCount }),
      ...(registry ? { cluster: () => registry.readiness() } : {}),
    },
  });
  metrics.bindSources({
    connections: () => ws.connectionCount,
    sessions: () => sessions.counts(),
    stt: () => stt.health(),
    llm: () => llm.health(),
  });
  const metricsServer = config.metrics.listener === null ? null : new MetricsServer(metrics, guard);
  let port: number;
  let metricsPort: number | null = null;
  try {
    port = await server.listen(config.host, config.port);
    if (agent !== null && config.cluster.agentPort !== null) await agent.listen(config.host, config.cluster.agentPort);
    if (metricsServer !== null && config.metrics.listener !== null) {
      metricsPort = await metricsServer.listen(config.metrics.listener.host, config.metrics.listener.port);
    }
  } catch (err) {
    server.stopListening();
    agent?.close();
    await Promise.all([registry?.close(), quotaPeers?.close()]);
    await Promise.allSettled([stt.close().then(() => speakerModel?.release()), llm.close()]);
    store.close();
    throw err;
  }
  sessions.startCleanup();
  lifecycle = 'ready';
  logger.info(
    { host: config.host, port, metricsPort, version: VERSION, transport, stt: stt.name, llm: llm.name, store: store.kind },
    'voxgate listening',
  );
  if (auth.enabled) logger.info({ credentials: auth.describe() }, 'credentials required at the WebSocket upgrade');
  else logger.warn({ credentials: auth.describe() }, 'credentials are off: anyone who can reach the port can use voxgate (set AUTH_API_KEYS or AUTH_JWT_SECRET, docs/security.md)');

  let shuttingDown: Promise<void> | null = null;
  const shutdown = (): Promise<void> => {
    shuttingDown ??= (async () => {
      // readyz turns 503 and new WebSocket upgrades are refused, but HTTP keeps being served during the
      // drain so that orchestrators can see the state; open connections may finish their work.
      lifecycle = 'draining';
      void registry?.refresh();
      // The drain is for work in flight (recordings, LLM requests), not for idle connections: it ends as
      // soon as nothing is in flight, and idle connections get their 1001 then.
      const inFlight = (): number => requests.inFlight + stt.health().activeStreams;
      logger.info({ drainMs: config.shutdownDrainMs, connections: ws.connectionCount, inFlight: inFlight() }, 'shutting down: draining');
      const drained = await waitUntil(() => ws.connectionCount === 0 || inFlight() === 0, config.shutdownDrainMs);
      logger.info({ drained, connections: ws.connectionCount, inFlight: inFlight() }, drained ? 'drain complete' : 'drain time over');
      ws.closeAll(CloseCode.goingAway, 'server shutting down');
      server.stopListening();
      metricsServer?.close();
      requests.cancelAll();
      agent?.close();
      await Promise.all([registry?.close(), quotaPeers?.close()]);
      dialogue.close();
      sessions.close();
      // A hung engine must not keep the process from exiting: the process exit ends its threads anyway.
      await Promise.allSettled([
        // The speaker model only after every recogniser using it is gone (an engine that hangs keeps it).
        settleWithin(stt.close().then(() => speakerModel?.release()), ENGINE_CLOSE_TIMEOUT_MS, () => logger.error('speech engine did not close in time')),
        settleWithin(llm.close(), ENGINE_CLOSE_TIMEOUT_MS, () => logger.error('LLM engine did not close in time')),
      ]);
      store.close();
      logger.info('shutdown complete');
      await flushLogger(logger);
    })();
    return shuttingDown;
  };

  return { port, metricsPort, stt, llm, shutdown, reloadCredentials: () => auth.reloadKeys() };
}

const ENGINE_CLOSE_TIMEOUT_MS = 15_000;

/** The /asr endpoint over the configured engine: only the vosk engine has reply-per-frame streams. */
function asrEndpoint(config: Config, stt: SttEngine, quotas: Quotas, speakerModel: SpeakerModel | null): AsrEndpoint {
  const vosk = stt instanceof VoskEngine ? stt : null;
  // A cheap admission check at the upgrade (503 + Retry-After); a stream refused later (its config asked
  // for a dearer rate, or the last slot went meanwhile) is closed with 1013 before its first reply.
  const canAdmit = vosk !== null ? () => vosk.canAdmit() : null;
  return new AsrEndpoint({
    defaults: {
      sampleRate: config.asr.sampleRate,
      words: config.asr.showWords,
      maxAlternatives: config.asr.maxAlternatives,
      speakerModelAddress: speakerModel?.address ?? null,
    },
    modelNames: config.asr.modelNames,
    // VoskEngine.openStream returns a VoskStream, which is a ReplyPerFrameStream.
    openStream: vosk === null ? null : (options) => vosk.openStream(options) as VoskStream,
    canAdmit,
    quotas,
  });
}

/** Resolves when `work` settles or after `timeoutMs` (calling `onTimeout`), whichever is first. */
async function settleWithin(work: Promise<void>, timeoutMs: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([work.then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') onTimeout();
}

/** MAX_CONNECTIONS, lowered (loudly) if the open-files limit could not hold that many sockets. */
function connectionLimit(config: Config, logger: Logger): number {
  const configured = config.websocket.maxConnections;
  const softLimit = openFilesSoftLimit();
  if (softLimit === null) return configured;
  const fitting = connectionsWithinLimit(softLimit, config.llm.maxInFlight);
  if (configured <= fitting) return configured;
  logger.warn(
    { configured, effective: fitting, openFilesLimit: softLimit },
    'MAX_CONNECTIONS lowered to fit the open-files limit (raise it with ulimit -n or the container nofile limit)',
  );
  return fitting;
}

/** Resolves true when `done()` is true, or false after `timeoutMs`; checks at once, then every 50 ms. */
async function waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(50, deadline - Date.now())));
  }
  return true;
}
