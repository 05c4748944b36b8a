import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, WebSocketBehavior, us_socket_context_t } from 'uWebSockets.js';
import type { AuthRefusal, AuthResult, Authenticator, Principal } from '../auth/authenticator.js';
import type { Metrics, UpgradeRefusalReason } from '../metrics/metrics.js';
import type { Quotas } from '../quotas/quotas.js';
import type { Dialogue } from '../dialogue/event-handlers.js';
import { RateLimitedError } from '../errors.js';
import { decodeClientEvent } from '../protocol/decode.js';
import { withheldExtensionEvents } from '../protocol/extensions.js';
import { errorEvent } from '../protocol/server-events.js';
import { clientAddress, type ProxyTrust } from './client-address.js';
import { CloseCode, Connection, type ConnectionLimits, type SocketUserData } from './connection.js';
import type { EdgeGuard } from './edge-guard.js';
import { respond, respondJson } from './http-response.js';
import { LogLimiter } from '../log-limiter.js';
import { parseUpgradeRequest, type UpgradeRequest } from './upgrade-request.js';
import type { AsrEndpoint } from '../asr/endpoint.js';
import type { AsrSession } from '../asr/session.js';

/** The app's path, a misspelling some app builds still use, and the deployment guide's forms. */
export const WEBSOCKET_PATHS = ['/conversation', '/conservation', '/ws', '/ws/:clientId'] as const;

export interface WsHandlerOptions {
  dialogue: Dialogue;
  logger: Logger;
  guard: EdgeGuard;
  limits: ConnectionLimits;
  maxMessageBytes: number;
  pingIntervalSeconds: number;
  maxConnections: number;
  /** null: any origin. Clients that send no Origin header (non-browser) are accepted. */
  allowedOrigins: readonly string[] | null;
  /** Whose X-Forwarded-For gives the client's address (TRUST_PROXY, TRUSTED_PROXIES). */
  proxyTrust: ProxyTrust;
  /** Credentials checked at the upgrade (off: every connection is anonymous). */
  auth: Authenticator;
  metrics: Metrics;
  /** Per-owner and per-address quotas: connections are checked at the upgrade (429). */
  quotas: Quotas;
  isAcceptingConnections(): boolean;
  /** The vosk-server-compatible endpoint and its paths (src/asr/), or null when ASR_ENABLED=false. */
  asr?: { endpoint: AsrEndpoint; paths: readonly string[] } | null;
}

type Endpoint = 'conversation' | 'asr';

/** How many refused upgrades are logged per interval (a scan or a flood must not decide the log's size). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;
const REFUSAL_LINES_PER_INTERVAL = 20;

/**
 * The frame size uWS accepts. Frames between WEBSOCKET_MAX_MESSAGE_SIZE and this get a readable 1009
 * close from us; uWS cuts larger ones off without a reason (1006), and would do so at its 16 KiB default.
 * uWS holds a frame in memory until it is complete, so the margin is bounded: twice the limit, at most
 * the limit + 16 MiB.
 */
export function payloadLimitBytes(maxMessageBytes: number): number {
  return maxMessageBytes + Math.min(maxMessageBytes, 16 * 1024 * 1024);
}

/** Owns the set of open connections. */
export class WsHandler {
  readonly #options: WsHandlerOptions;
  readonly #connections = new Set<Connection>();
  /** Uncounts each open connection from its owner's and address's connection quota. */
  readonly #quotaReleases = new Map<Connection, () => void>();
  readonly #refusalLog: LogLimiter;

  constructor(options: WsHandlerOptions) {
    this.#options = options;
    this.#refusalLog = new LogLimiter({ intervalMs: REFUSAL_LOG_INTERVAL_MS, linesPerInterval: REFUSAL_LINES_PER_INTERVAL });
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  register(app: TemplatedApp): void {
    const behavior = this.#behavior();
    for (const path of WEBSOCKET_PATHS) {
      // Only `/ws/:clientId` has a route parameter; the guard wrapper is built once per route, not per request.
      const upgrade = path === '/ws/:clientId'
        ? (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => this.#upgrade(res, req, context, req.getParameter(0) ?? '')
        : (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => this.#upgrade(res, req, context, null);
      app.ws<SocketUserData>(path, { ...behavior, upgrade: this.#options.guard.http(`upgrade ${path}`, upgrade) });
    }
    // Registered before the HTTP routes: a plain GET / (no Sec-WebSocket-Key) is passed on by uWS to
    // the health route, only an upgrade is taken here.
    for (const path of this.#options.asr?.paths ?? []) {
      const upgrade = (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => this.#upgrade(res, req, context, null, 'asr');
      app.ws<SocketUserData>(path, { ...behavior, upgrade: this.#options.guard.http(`upgrade ${path}`, upgrade) });
    }
  }

  /** Sends a close frame to every connection (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const connection of [...this.#connections]) connection.close(code, reason);
  }

  #behavior(): WebSocketBehavior<SocketUserData> {
    const { maxMessageBytes, pingIntervalSeconds, guard } = this.#options;
    return {
      maxPayloadLength: payloadLimitBytes(maxMessageBytes),
      // uWS pings a quiet client before idleTimeout; only a peer that stops answering pings is closed.
      idleTimeout: Math.max(8, Math.ceil((pingIntervalSeconds * 2) / 4) * 4),
      sendPingsAutomatically: true,
      // Connection closes a slow consumer at maxBufferedBytes itself; uWS's own cap sits one event above
      // it, and the largest event is about as large as the largest frame a client may send (its history).
      maxBackpressure: this.#options.limits.maxBufferedBytes + maxMessageBytes,
      closeOnBackpressureLimit: 0,
      // Every callback uWS calls goes through the guard: an exception here must not end the process.
      open: guard.socket('open', (ws: WebSocket<SocketUserData>) => this.#open(ws)),
      message: guard.socket('message', (ws: WebSocket<SocketUserData>, message: ArrayBuffer, isBinary: boolean) => this.#message(ws, message, isBinary)),
      drain: guard.socket('drain', (ws: WebSocket<SocketUserData>) => ws.getUserData().connection?.onDrain()),
      close: guard.socket('close', (ws: WebSocket<SocketUserData>, code: number) => this.#close(ws, code)),
    };
  }

  #upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t, clientIdRaw: string | null, endpoint: Endpoint = 'conversation'): void {
    // Malformed input (bad percent-escapes, an over-long client id, a bad key) is refused before anything else.
    const parsed = parseUpgradeRequest(req, clientIdRaw);
    if (!parsed.ok) {
      const { status, reason } = parsed.refusal;
      const headers: Array<[string, string]> = status === '426 Upgrade Required' ? [['Sec-WebSocket-Version', '13']] : [];
      this.#refuse(res, 'bad_request', req.getUrl(), status, reason, headers);
      return;
    }
    const request = parsed.request;
    if (!this.#options.isAcceptingConnections()) return this.#refuse(res, 'shutting_down', request.url, '503 Service Unavailable', 'server is shutting down');
    if (this.#connections.size >= this.#options.maxConnections) {
      return this.#refuse(res, 'connection_limit', request.url, '503 Service Unavailable', `connection limit reached (${this.#options.maxConnections})`);
    }
    const allowed = this.#options.allowedOrigins;
    if (allowed !== null && request.origin !== '' && !allowed.includes(request.origin)) {
      return this.#refuse(res, 'origin', request.url, '403 Forbidden', `origin ${request.origin.slice(0, 200)} not allowed`);
    }
    const peerAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
    const remoteAddress = clientAddress(peerAddress, request.forwardedFor, this.#options.proxyTrust);
    const auth = this.#options.auth;
    if (!auth.enabled) return this.#accept(res, context, request, peerAddress, remoteAddress, null, endpoint);
    const result = auth.authenticate(request.credential, endpoint);
    if (!(result instanceof Promise)) return this.#authenticated(res, context, request, peerAddress, remoteAddress, result, endpoint);
    // A JWT's signature is checked asynchronously: uWS's HttpRequest is invalid after this callback, so
    // everything needed was copied into `request` above; the edge guard's onAborted marks a client that
    // left meanwhile, and respond() then writes nothing.
    result
      .then((checked) => this.#authenticated(res, context, request, peerAddress, remoteAddress, checked, endpoint))
      .catch((err: unknown) => this.#options.guard.asyncFailed('upgrade', res, err));
  }

  #authenticated(
    res: HttpResponse,
    context: us_socket_context_t,
    request: UpgradeRequest,
    peerAddress: string,
    remoteAddress: string,
    result: AuthResult,
    endpoint: Endpoint,
  ): void {
    if (!result.ok) return this.#refuseCredential(res, request, remoteAddress, result.reason);
    this.#accept(res, context, request, peerAddress, remoteAddress, result.principal, endpoint);
  }

  #accept(
    res: HttpResponse,
    context: us_socket_context_t,
    request: UpgradeRequest,
    peerAddress: string,
    remoteAddress: string,
    principal: Principal | null,
    endpoint: Endpoint,
  ): void {
    // After an async credential check the drain may have begun meanwhile.
    if (!this.#options.isAcceptingConnections()) return this.#refuse(res, 'shutting_down', request.url, '503 Service Unavailable', 'server is shutting down');
    // Checked here, counted at open: the count is exact, and concurrent upgrades may pass it by the few
    // that are between this check and their open.
    const refusal = this.#options.quotas.checkConnection({ owner: principal?.owner ?? null, remoteAddress, grants: principal?.grants ?? null });
    if (refusal !== null) {
      const seconds = String(refusal.retryAfterSeconds);
      return this.#refuse(res, 'quota', request.url, '429 Too Many Requests', `quota ${refusal.quota} reached`, [['Retry-After', seconds]], {
        remoteAddress,
        owner: principal?.owner ?? null,
      }, { quota: refusal.quota, limit: refusal.limit, retry_after_seconds: refusal.retryAfterSeconds });
    }
    const asr = this.#options.asr?.endpoint ?? null;
    if (endpoint === 'asr' && asr !== null) {
      // Last: refusing for capacity only once the client may use /asr at all.
      const asrRefusal = asr.refusal(request.url);
      if (asrRefusal !== null) {
        const headers: Array<[string, string]> = asrRefusal.retryAfterSeconds === null ? [] : [['Retry-After', String(asrRefusal.retryAfterSeconds)]];
        return this.#refuse(res, asrRefusal.status === '404 Not Found' ? 'unknown_model' : 'stt_busy', request.url, asrRefusal.status, asrRefusal.reason, headers, { remoteAddress });
      }
    }
    const userData: SocketUserData = {
      clientId: request.clientId,
      path: request.url,
      remoteAddress,
      peerAddress,
      forwardedFor: request.forwardedFor === null ? null : request.forwardedFor.slice(0, 256),
      withheldEvents: withheldExtensionEvents(request.extensionsQuery),
      principal,
      connection: null,
      isClosed: false,
      asrSession: null,
      isAsr: endpoint === 'asr',
    };
    respond(res, () => res.upgrade(userData, request.key, request.protocol, request.extensionsHeader, context));
  }

  /** 401 (or 403 for a credential whose grants do not include this endpoint), and nothing else. */
  #refuseCredential(res: HttpResponse, request: UpgradeRequest, remoteAddress: string, reason: AuthRefusal): void {
    const status = reason === 'forbidden' ? '403 Forbidden' : '401 Unauthorized';
    const headers: Array<[string, string]> = reason === 'forbidden' ? [] : [['WWW-Authenticate', `Bearer realm="voxgate"${reason === 'missing' ? '' : ', error="invalid_token"'}`]];
    // The reason is one of four words; the credential itself and the query string never reach the log.
    this.#refuse(res, `credential_${reason}`, request.url, status, `credential ${reason}`, headers, { remoteAddress });
  }

  /** `url` is the path only (uWS's getUrl() has no query string, which may carry a credential). */
  #refuse(
    res: HttpResponse,
    metricReason: UpgradeRefusalReason,
    url: string,
    status: string,
    reason: string,
    headers: Array<[string, string]> = [],
    fields: Record<string, unknown> = {},
    body: Record<string, unknown> = {},
  ): void {
    this.#options.metrics.upgradesRefused.inc({ reason: metricReason });
    respondJson(res, status, headers, { error: reason, ...body });
    const skipped = this.#refusalLog.take();
    if (skipped !== null) this.#options.logger.warn({ url: url.slice(0, 256), status, reason, ...fields, skippedLogLines: skipped }, 'websocket upgrade refused');
  }

  #open(ws: WebSocket<SocketUserData>): void {
    const userData = ws.getUserData();
    const id = randomUUID();
    const log = this.#options.logger.child({ connectionId: id, clientId: userData.clientId });
    const connection = new Connection({
      id,
      socket: ws,
      limits: this.#options.limits,
      log,
      remoteAddress: userData.remoteAddress,
      withheldEvents: userData.withheldEvents,
      principal: userData.principal,
      metrics: this.#options.metrics,
    });
    userData.connection = connection;
    const asr = this.#options.asr?.endpoint;
    if (userData.isAsr && asr !== undefined) {
      userData.asrSession = asr.open(connection, { owner: userData.principal?.owner ?? null, remoteAddress: userData.remoteAddress, grants: userData.principal?.grants ?? null }, id);
    }
    this.#connections.add(connection);
    this.#quotaReleases.set(connection, this.#options.quotas.countConnection(connection));
    this.#options.metrics.connectionsOpened.inc();
    log.info(
      {
        path: userData.path,
        remoteAddress: userData.remoteAddress,
        peerAddress: userData.peerAddress,
        forwardedFor: userData.forwardedFor,
        owner: userData.principal?.owner ?? null,
        extensionsWithheld: [...userData.withheldEvents],
        connections: this.#connections.size,
      },
      'connection opened',
    );
  }

  #message(ws: WebSocket<SocketUserData>, message: ArrayBuffer, isBinary: boolean): void {
    const connection = ws.getUserData().connection;
    if (!connection || connection.isClosed) return;
    if (message.byteLength > this.#options.maxMessageBytes) {
      connection.log.warn({ bytes: message.byteLength, limit: this.#options.maxMessageBytes }, 'message too large');
      connection.close(
        CloseCode.messageTooBig,
        `message of ${message.byteLength} bytes exceeds WEBSOCKET_MAX_MESSAGE_SIZE=${this.#options.maxMessageBytes}`,
      );
      return;
    }
    const asrSession = ws.getUserData().asrSession;
    if (asrSession !== null) return this.#asrMessage(connection, asrSession, message, isBinary);
    if (isBinary) {
      this.#options.metrics.eventsOfType('binary_audio').inc();
      this.#options.dialogue.handleBinaryAudio(connection, new Uint8Array(message));
      return;
    }
    // uWS has already validated text frames as UTF-8 (it closes with 1007 otherwise).
    const decoded = decodeClientEvent(Buffer.from(message).toString('utf8'));
    if (!decoded.ok) {
      this.#options.metrics.eventsOfType('malformed').inc();
      // A reply to bad input costs budget like an event: a client cannot buy unlimited error events.
      const admission = connection.admitEvent();
      const skipped = connection.takeBadInputLogLine();
      if (skipped !== null) {
        connection.log.info({ code: decoded.error.code, details: decoded.error.details, admission, skippedLogLines: skipped }, 'malformed event');
      }
      if (admission === 'admitted') connection.send(errorEvent(decoded.sessionId, decoded.error));
      else if (admission === 'droppedNotify') connection.send(errorEvent(decoded.sessionId, this.#rateLimited('malformed event')));
      return;
    }
    this.#options.metrics.eventsOfType(decoded.event.type).inc();
    // Audio is bounded per recording and by STT capacity; the rate budget is for control events.
    if (decoded.event.type !== 'audio_stream') {
      const admission = connection.admitEvent();
      if (admission !== 'admitted') {
        const skipped = connection.takeBadInputLogLine();
        if (skipped !== null) connection.log.info({ type: decoded.event.type, admission, skippedLogLines: skipped }, 'event rate limit exceeded: event dropped');
        if (admission === 'droppedNotify') {
          const sessionId = 'session_id' in decoded.event.data ? decoded.event.data.session_id : null;
          connection.send(errorEvent(sessionId, this.#rateLimited(`event ${decoded.event.type}`)));
        }
        return;
      }
    }
    this.#options.dialogue.handleEvent(connection, decoded.event);
  }

  /** An /asr frame: audio is bounded by the session's queue and the engine; text frames by the rate budget. */
  #asrMessage(connection: Connection, session: AsrSession, message: ArrayBuffer, isBinary: boolean): void {
    if (isBinary) {
      this.#options.metrics.eventsOfType('asr_audio').inc();
      session.onBinary(new Uint8Array(message));
      return;
    }
    this.#options.metrics.eventsOfType('asr_text').inc();
    const admission = connection.admitEvent();
    if (admission === 'closed') return;
    if (admission !== 'admitted') {
      // vosk-server's protocol has no error message: the frame's reply would be missing, so close.
      connection.close(CloseCode.policyViolation, `RATE_LIMITED: more than ${this.#options.limits.eventRatePerSecond} text frames per second`);
      return;
    }
    session.onText(Buffer.from(message).toString('utf8'));
  }

  #rateLimited(what: string): RateLimitedError {
    const rate = this.#options.limits.eventRatePerSecond;
    return new RateLimitedError(`more than ${rate} events per second; ${what} dropped, and further ones are dropped without a reply`, {
      details: `event_rate_per_second: ${rate}`,
    });
  }

  #close(ws: WebSocket<SocketUserData>, code: number): void {
    const userData = ws.getUserData();
    userData.isClosed = true;
    const connection = userData.connection;
    if (!connection) return;
    connection.onClosed();
    userData.asrSession?.onClosed();
    this.#connections.delete(connection);
    this.#quotaReleases.get(connection)?.();
    this.#quotaReleases.delete(connection);
    this.#options.dialogue.handleChannelClosed(connection);
    connection.log.info({ code, connections: this.#connections.size }, 'connection closed');
  }
}
