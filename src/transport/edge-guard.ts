import type { Logger } from 'pino';
import type { HttpRequest, HttpResponse, WebSocket } from 'uWebSockets.js';
import { CloseCode, type SocketUserData } from './connection.js';
import { respondJson, responsePhase, trackResponse } from './http-response.js';
import { LogLimiter } from '../log-limiter.js';

export type SocketCallbackName = 'open' | 'message' | 'drain' | 'close';

/** How many failure lines the guard writes per interval; the rest are counted into the next line. */
const FAILURE_LOG_INTERVAL_MS = 10_000;
const FAILURE_LINES_PER_INTERVAL = 10;

/**
 * The one boundary between uWebSockets.js and voxgate. An exception thrown from a uWS callback would end
 * the process (and every conversation in it); every callback uWS calls (upgrade, open, message, drain,
 * close, each HTTP route) is registered through this guard, which logs the exception with the request's
 * context (rate-limited), answers it (HTTP 400 for a URIError, which only malformed request data raises,
 * else 500; close 1011 for a socket), counts it for /api/health, and lets the process go on.
 */
export class EdgeGuard {
  readonly #logger: Logger;
  readonly #logLimiter = new LogLimiter({ intervalMs: FAILURE_LOG_INTERVAL_MS, linesPerInterval: FAILURE_LINES_PER_INTERVAL });
  #failures = 0;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Exceptions caught at the edge since start-up. */
  get failureCount(): number {
    return this.#failures;
  }

  /** Guards an HTTP route or WebSocket upgrade handler. The wrapper is built once, at registration. */
  http<F extends (res: HttpResponse, req: HttpRequest, ...context: never[]) => void>(route: string, handler: F): F {
    const guarded = (res: HttpResponse, req: HttpRequest, context: never): void => {
      trackResponse(res);
      try {
        handler(res, req, context);
      } catch (err) {
        this.#httpFailed(route, res, req, err);
      }
    };
    return guarded as F;
  }

  /** Guards a WebSocket callback. Fixed arity (the socket and up to two arguments): no rest array per frame. */
  socket<F extends (ws: WebSocket<SocketUserData>, ...args: never[]) => void>(name: SocketCallbackName, handler: F): F {
    const guarded = (ws: WebSocket<SocketUserData>, a: never, b: never): void => {
      try {
        handler(ws, a, b);
      } catch (err) {
        this.#socketFailed(name, ws, err);
      }
    };
    return guarded as F;
  }

  /**
   * Async work a guarded HTTP handler started (a JWT check at the upgrade) failed after the callback
   * returned: logged and answered 500 like a throw, if the client is still waiting.
   */
  asyncFailed(route: string, res: HttpResponse, err: unknown): void {
    this.#failures++;
    this.#log({ err, callback: 'http', route, phase: responsePhase(res), async: true });
    if (responsePhase(res) === 'open') respondJson(res, '500 Internal Server Error', [], { error: 'internal_error' });
  }

  #httpFailed(route: string, res: HttpResponse, req: HttpRequest, err: unknown): void {
    this.#failures++;
    // Still inside the uWS callback: req is valid here.
    this.#log({ err, callback: 'http', route, method: req.getMethod(), url: req.getUrl().slice(0, 256), phase: responsePhase(res) });
    const phase = responsePhase(res);
    if (phase === 'open') {
      const badRequest = err instanceof URIError;
      respondJson(res, badRequest ? '400 Bad Request' : '500 Internal Server Error', [], {
        error: badRequest ? 'bad_request' : 'internal_error',
      });
    } else if (phase === 'writing') {
      // Half a response went out: the connection cannot carry a second one.
      res.close();
    }
  }

  #socketFailed(name: SocketCallbackName, ws: WebSocket<SocketUserData>, err: unknown): void {
    this.#failures++;
    const userData = ws.getUserData();
    const connection = userData.connection;
    this.#log({
      err,
      callback: name,
      connectionId: connection?.id ?? null,
      clientId: userData.clientId,
      path: userData.path,
      remoteAddress: userData.remoteAddress,
    });
    if (name === 'close' || userData.isClosed) return;
    // The connection's state is unknown after a throw: close it; the client can reconnect and resume.
    if (connection) connection.close(CloseCode.internalError, 'internal error');
    else ws.end(CloseCode.internalError, 'internal error');
  }

  #log(context: Record<string, unknown>): void {
    const skipped = this.#logLimiter.take();
    if (skipped === null) return;
    this.#logger.error({ ...context, failures: this.#failures, skippedLogLines: skipped }, 'exception at the transport edge (answered, process goes on)');
  }
}
