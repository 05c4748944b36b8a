import uWS from 'uWebSockets.js';
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import type { EdgeGuard } from '../transport/edge-guard.js';
import { respond, respondJson } from '../transport/http-response.js';
import type { Metrics } from './metrics.js';

/**
 * GET /metrics in the Prometheus text format. prom-client builds the text asynchronously; the edge
 * guard's onAborted covers a scraper that leaves meanwhile (respond() then writes nothing).
 */
export function registerMetricsRoute(app: TemplatedApp, metrics: Metrics, guard: EdgeGuard): void {
  app.get(
    '/metrics',
    guard.http('GET /metrics', (res) => {
      metrics.scrape().then(
        ({ contentType, body }) =>
          respond(res, () => {
            res.writeStatus('200 OK');
            res.writeHeader('Content-Type', contentType);
            res.writeHeader('Cache-Control', 'no-store');
            res.end(body);
          }),
        (err: unknown) => guard.asyncFailed('GET /metrics', res, err),
      );
    }),
  );
}

/** METRICS_PORT: /metrics on its own listener (loopback by default), and nothing else there. */
export class MetricsServer {
  readonly #app: TemplatedApp;
  #listenSocket: us_listen_socket | null = null;

  constructor(metrics: Metrics, guard: EdgeGuard) {
    this.#app = uWS.App();
    registerMetricsRoute(this.#app, metrics, guard);
    this.#app.any(
      '/*',
      guard.http('metrics ANY /*', (res) => {
        respondJson(res, '404 Not Found', [], { error: 'not_found' });
      }),
    );
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#app.listen(host, port, (socket) => {
        if (!socket) {
          reject(new Error(`cannot listen for metrics on ${host}:${port} (in use or not permitted)`));
          return;
        }
        this.#listenSocket = socket;
        resolve(uWS.us_socket_local_port(socket));
      });
    });
  }

  close(): void {
    if (this.#listenSocket === null) return;
    uWS.us_listen_socket_close(this.#listenSocket);
    this.#listenSocket = null;
  }
}
