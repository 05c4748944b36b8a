import uWS from 'uWebSockets.js';
import type { us_listen_socket } from 'uWebSockets.js';
import { registerDemoRoutes, type DemoFile } from '../demo/routes.js';
import type { Metrics } from '../metrics/metrics.js';
import { registerMetricsRoute } from '../metrics/metrics-route.js';
import { registerHttpRoutes, type HttpRoutesOptions } from './http-routes.js';
import type { WsHandler } from './ws-handler.js';

export interface HttpServerOptions extends HttpRoutesOptions {
  ws: WsHandler;
  /** The demo page's files (src/demo/), or null when DEMO_ENABLED=false. */
  demo?: ReadonlyMap<string, DemoFile> | null;
  /** GET /metrics on this port, or null (not served here: METRICS_PORT has its own listener). */
  metrics?: Metrics | null;
}

/**
 * The uWebSockets.js app: WebSocket routes first, then HTTP routes (the catch-all 404 is last). Every
 * callback of both goes through `options.guard` (edge-guard.ts).
 */
export class HttpServer {
  readonly #app: uWS.TemplatedApp;
  #listenSocket: us_listen_socket | null = null;
  #port = 0;

  constructor(options: HttpServerOptions) {
    this.#app = uWS.App();
    options.ws.register(this.#app);
    if (options.demo) registerDemoRoutes(this.#app, options.guard, options.demo);
    if (options.metrics) registerMetricsRoute(this.#app, options.metrics, options.guard);
    registerHttpRoutes(this.#app, options);
  }

  /** Listens and resolves with the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#app.listen(host, port, (socket) => {
        if (!socket) {
          reject(new Error(`cannot listen on ${host}:${port} (in use or not permitted)`));
          return;
        }
        this.#listenSocket = socket;
        this.#port = uWS.us_socket_local_port(socket);
        resolve(this.#port);
      });
    });
  }

  get port(): number {
    return this.#port;
  }

  /** Stops accepting connections; open ones stay. */
  stopListening(): void {
    if (this.#listenSocket === null) return;
    uWS.us_listen_socket_close(this.#listenSocket);
    this.#listenSocket = null;
  }
}
