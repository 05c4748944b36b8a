import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, WebSocketBehavior, us_socket_context_t } from 'uWebSockets.js';
import type { Dialogue } from '../dialogue/event-handlers.js';
import { RateLimitedError } from '../errors.js';
import { decodeClientEvent } from '../protocol/decode.js';
import { errorEvent } from '../protocol/server-events.js';
import { CloseCode, Connection, type ConnectionLimits, type SocketUserData } from './connection.js';

/** The app's path, a misspelling some app builds still use, and the deployment guide's forms. */
export const WEBSOCKET_PATHS = ['/conversation', '/conservation', '/ws', '/ws/:clientId'] as const;

export interface WsHandlerOptions {
  dialogue: Dialogue;
  logger: Logger;
  limits: ConnectionLimits;
  maxMessageBytes: number;
  pingIntervalSeconds: number;
  maxConnections: number;
  /** null: any origin. Clients that send no Origin header (non-browser) are accepted. */
  allowedOrigins: readonly string[] | null;
  isAcceptingConnections(): boolean;
}

/** Owns the set of open connections. */
export class WsHandler {
  readonly #options: WsHandlerOptions;
  readonly #connections = new Set<Connection>();

  constructor(options: WsHandlerOptions) {
    this.#options = options;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  register(app: TemplatedApp): void {
    const behavior = this.#behavior();
    for (const path of WEBSOCKET_PATHS) app.ws<SocketUserData>(path, behavior);
  }

  /** Sends a close frame to every connection (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const connection of [...this.#connections]) connection.close(code, reason);
  }

  #behavior(): WebSocketBehavior<SocketUserData> {
    const { maxMessageBytes, pingIntervalSeconds } = this.#options;
    return {
      // Frames between our limit and 4x it get a readable 1009 close from us; uWS itself cuts larger
      // ones off without a reason (1006), and would otherwise do so at its 16 KiB default.
      maxPayloadLength: Math.min(maxMessageBytes * 4, 256 * 1024 * 1024),
      // uWS pings a quiet client before idleTimeout; only a peer that stops answering pings is closed.
      idleTimeout: Math.max(8, Math.ceil((pingIntervalSeconds * 2) / 4) * 4),
      sendPingsAutomatically: true,
      maxBackpressure: this.#options.limits.maxBufferedBytes + maxMessageBytes,
      closeOnBackpressureLimit: 0,
      upgrade: (res, req, context) => this.#upgrade(res, req, context),
      open: (ws) => this.#open(ws),
      message: (ws, message, isBinary) => this.#message(ws, message, isBinary),
      drain: (ws) => ws.getUserData().connection?.onDrain(),
      close: (ws, code) => this.#close(ws, code),
    };
  }

  #upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const url = req.getUrl();
    const origin = req.getHeader('origin');
    const key = req.getHeader('sec-websocket-key');
    const protocol = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const forwardedFor = req.getHeader('x-forwarded-for') || null;
    const clientId = url.startsWith('/ws/') ? decodeURIComponent(req.getParameter(0)) : null;
    const reject = (status: string, reason: string): void => {
      this.#options.logger.warn({ url, origin, reason }, 'websocket upgrade rejected');
      res.cork(() => {
        res.writeStatus(status).writeHeader('Content-Type', 'application/json').end(JSON.stringify({ error: reason }));
      });
    };
    if (!this.#options.isAcceptingConnections()) return reject('503 Service Unavailable', 'server is shutting down');
    if (this.#connections.size >= this.#options.maxConnections) {
      return reject('503 Service Unavailable', `connection limit reached (${this.#options.maxConnections})`);
    }
    const allowed = this.#options.allowedOrigins;
    if (allowed !== null && origin !== '' && !allowed.includes(origin)) return reject('403 Forbidden', `origin ${origin} not allowed`);
    const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
    const userData: SocketUserData = { clientId, path: url, remoteAddress, forwardedFor, connection: null };
    res.upgrade(userData, key, protocol, extensions, context);
  }

  #open(ws: WebSocket<SocketUserData>): void {
    const userData = ws.getUserData();
    const id = randomUUID();
    const log = this.#options.logger.child({ connectionId: id, clientId: userData.clientId });
    const connection = new Connection(id, ws, this.#options.limits, log);
    userData.connection = connection;
    this.#connections.add(connection);
    log.info(
      { path: userData.path, remoteAddress: userData.remoteAddress, forwardedFor: userData.forwardedFor, connections: this.#connections.size },
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
    if (isBinary) {
      this.#options.dialogue.handleBinaryAudio(connection, new Uint8Array(message));
      return;
    }
    // uWS has already validated text frames as UTF-8 (it closes with 1007 otherwise).
    const decoded = decodeClientEvent(Buffer.from(message).toString('utf8'));
    if (!decoded.ok) {
      connection.log.info({ code: decoded.error.code, details: decoded.error.details }, 'malformed event');
      connection.send(errorEvent(decoded.sessionId, decoded.error));
      return;
    }
    // Audio is bounded per recording and by STT capacity; the rate budget is for control events.
    if (decoded.event.type !== 'audio_stream' && !connection.takeEventToken()) {
      const error = new RateLimitedError(
        `more than ${this.#options.limits.eventRatePerSecond} events per second; event ${decoded.event.type} dropped`,
        { details: `event_rate_per_second: ${this.#options.limits.eventRatePerSecond}` },
      );
      connection.send(errorEvent('session_id' in decoded.event.data ? decoded.event.data.session_id : null, error));
      return;
    }
    this.#options.dialogue.handleEvent(connection, decoded.event);
  }

  #close(ws: WebSocket<SocketUserData>, code: number): void {
    const connection = ws.getUserData().connection;
    if (!connection) return;
    connection.onClosed();
    this.#connections.delete(connection);
    this.#options.dialogue.handleChannelClosed(connection);
    connection.log.info({ code, connections: this.#connections.size }, 'connection closed');
  }
}
