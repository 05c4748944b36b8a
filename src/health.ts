import type { LlmHealth } from './llm/engine.js';
import type { SessionManagerHealth } from './dialogue/session-manager.js';
import type { ServiceState, SttHealth } from './stt/engine.js';
import type { TransportImplementation } from './transport/native-check.js';

export type Lifecycle = 'starting' | 'ready' | 'draining';

/** Where the health routes get their facts: each owner reports on itself. */
export interface HealthSources {
  version: string;
  lifecycle(): Lifecycle;
  stt(): SttHealth;
  llm(): LlmHealth;
  sessions(): SessionManagerHealth;
  requestsInFlight(): number;
  transport(): { implementation: TransportImplementation; connections: number; maxConnections: number; handlerFailures: number };
  /** SESSION_STORE=redis: the node registry's view (full, draining, unregistered: not ready). */
  cluster?(): { ready: boolean; reason: string | null };
}

export interface HealthReport {
  httpStatus: 200 | 503;
  body: Record<string, unknown>;
}

function worst(states: readonly ServiceState[]): ServiceState {
  if (states.includes('unavailable')) return 'unavailable';
  if (states.includes('degraded')) return 'degraded';
  return 'healthy';
}

function transportState(sources: HealthSources): { state: ServiceState; reason: string | null } {
  const transport = sources.transport();
  if (sources.lifecycle() === 'draining') return { state: 'unavailable', reason: 'shutting down' };
  if (transport.implementation === 'fallback') {
    return { state: 'degraded', reason: 'uWebSockets.js runs its pure-JS fallback (ALLOW_FALLBACK_TRANSPORT=true)' };
  }
  return { state: 'healthy', reason: null };
}

function overall(states: readonly ServiceState[]): { status: string; httpStatus: 200 | 503 } {
  const state = worst(states);
  return { status: state === 'unavailable' ? 'unhealthy' : state, httpStatus: state === 'unavailable' ? 503 : 200 };
}

/** GET /api/health: what each service really is and whether it works. */
export function apiHealth(sources: HealthSources): HealthReport {
  const stt = sources.stt();
  const llm = sources.llm();
  const sessions = sources.sessions();
  const transport = sources.transport();
  const transportCheck = transportState(sources);
  const { status, httpStatus } = overall([stt.status, llm.status, sessions.status, transportCheck.state]);
  return {
    httpStatus,
    body: {
      status,
      timestamp: new Date().toISOString(),
      version: sources.version,
      services: {
        stt: {
          engine: stt.engine,
          status: stt.status,
          reason: stt.reason,
          model_path: stt.modelPath,
          workers: stt.workers,
          active_streams: stt.activeStreams,
          queue_depth: stt.queueDepth,
          stream_limit: stt.streamLimit,
          refusing: stt.refusing ?? null,
        },
        llm: {
          engine: llm.engine,
          status: llm.status,
          reason: llm.reason,
          model: llm.model,
          in_flight: llm.inFlight,
          queued: llm.queued,
        },
        session_manager: {
          status: sessions.status,
          reason: sessions.reason,
          active_sessions: sessions.activeSessions,
          held_bytes: sessions.heldBytes,
          attached_connections: sessions.attachedConnections,
          store: {
            kind: sessions.store.kind,
            status: sessions.store.status,
            path: sessions.store.path,
            sessions: sessions.store.sessions,
            last_error: sessions.store.lastError,
          },
        },
        request_manager: { status: 'healthy', reason: null, in_flight: sources.requestsInFlight() },
      },
      transport: {
        status: transportCheck.state,
        reason: transportCheck.reason,
        implementation: transport.implementation,
        connections: transport.connections,
        max_connections: transport.maxConnections,
        // Exceptions caught at the transport edge (answered with 500 or close 1011; the process went on).
        handler_failures: transport.handlerFailures,
      },
    },
  };
}

/** GET /conversation/health: the same facts in the replaced backend's second shape. */
export function conversationHealth(sources: HealthSources): HealthReport {
  const api = apiHealth(sources);
  const services = api.body.services as Record<string, Record<string, unknown>>;
  const transport = api.body.transport as Record<string, unknown>;
  return {
    httpStatus: api.httpStatus,
    body: {
      status: api.body.status,
      timestamp: api.body.timestamp,
      services: {
        session_manager: services.session_manager,
        stt_service: services.stt,
        llm_service: services.llm,
        request_manager: services.request_manager,
        websocket_handler: transport,
      },
    },
  };
}

/** GET /readyz: 200 only while serving and every engine is usable. */
export function readiness(sources: HealthSources): HealthReport {
  const lifecycle = sources.lifecycle();
  if (lifecycle !== 'ready') return { httpStatus: 503, body: { status: lifecycle } };
  const api = apiHealth(sources);
  if (api.httpStatus !== 200) return { httpStatus: api.httpStatus, body: { status: 'unavailable' } };
  return clusterReadiness(sources) ?? { httpStatus: 200, body: { status: 'ready' } };
}

/**
 * The cluster's part of /readyz (SESSION_STORE=redis): a full or draining node, or one missing from the
 * node registry, answers 503 so that the proxy's health check sends new connections to other nodes.
 */
function clusterReadiness(sources: HealthSources): HealthReport | null {
  const cluster = sources.cluster?.();
  if (cluster === undefined || cluster.ready) return null;
  return { httpStatus: 503, body: { status: 'unavailable', reason: cluster.reason } };
}
