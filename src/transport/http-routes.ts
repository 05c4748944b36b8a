import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { apiHealth, conversationHealth, readiness, type HealthReport, type HealthSources } from '../health.js';
import type { EdgeGuard } from './edge-guard.js';
import { respond, respondJson } from './http-response.js';

export interface HttpRoutesOptions {
  health: HealthSources;
  /** null: any origin. */
  allowedOrigins: readonly string[] | null;
  guard: EdgeGuard;
}

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  204: '204 No Content',
  403: '403 Forbidden',
  404: '404 Not Found',
  503: '503 Service Unavailable',
};

/**
 * The HTTP routes. Every handler answers synchronously, inside the request callback: a uWS handler that
 * returns without responding (and without onAborted) takes the whole process down. Each is registered
 * through the edge guard, which answers 500 for a handler that throws.
 */
export function registerHttpRoutes(app: TemplatedApp, options: HttpRoutesOptions): void {
  const { health, guard } = options;
  const cors = (req: HttpRequest) => corsHeaders(req.getHeader('origin'), options.allowedOrigins);

  app.get(
    '/',
    guard.http('GET /', (res, req) => {
      const headers = cors(req);
      sendJson(res, 200, headers, {
        status: health.lifecycle() === 'draining' ? 'draining' : 'healthy',
        timestamp: new Date().toISOString(),
        service: 'voxgate',
        version: health.version,
      });
    }),
  );
  app.get('/api/health', guard.http('GET /api/health', (res, req) => sendReport(res, cors(req), apiHealth(health))));
  app.get('/conversation/health', guard.http('GET /conversation/health', (res, req) => sendReport(res, cors(req), conversationHealth(health))));
  app.get('/livez', guard.http('GET /livez', (res, req) => sendJson(res, 200, cors(req), { status: 'alive' })));
  app.get('/readyz', guard.http('GET /readyz', (res, req) => sendReport(res, cors(req), readiness(health))));
  app.options(
    '/*',
    guard.http('OPTIONS /*', (res, req) => {
      const headers = cors(req);
      headers.push(['Access-Control-Allow-Methods', 'GET, OPTIONS'], ['Access-Control-Max-Age', '600']);
      const requested = req.getHeader('access-control-request-headers');
      // Echoed back to the browser: a header value, so bounded and without line breaks.
      if (requested && requested.length <= 1024 && !/[\r\n]/.test(requested)) headers.push(['Access-Control-Allow-Headers', requested]);
      respond(res, () => {
        res.writeStatus(STATUS_TEXT[204]!);
        for (const [name, value] of headers) res.writeHeader(name, value);
        res.endWithoutBody();
      });
    }),
  );
  app.any(
    '/*',
    guard.http('ANY /*', (res, req) => {
      const method = req.getMethod().toUpperCase().slice(0, 32);
      sendJson(res, 404, cors(req), { error: 'not_found', message: `no route for ${method} ${req.getUrl().slice(0, 256)}` });
    }),
  );
}

function corsHeaders(origin: string, allowedOrigins: readonly string[] | null): Array<[string, string]> {
  if (allowedOrigins === null) return [['Access-Control-Allow-Origin', '*']];
  if (origin !== '' && allowedOrigins.includes(origin)) return [['Access-Control-Allow-Origin', origin], ['Vary', 'Origin']];
  return [['Vary', 'Origin']];
}

function sendReport(res: HttpResponse, headers: Array<[string, string]>, report: HealthReport): void {
  sendJson(res, report.httpStatus, headers, report.body);
}

function sendJson(res: HttpResponse, status: number, headers: Array<[string, string]>, body: unknown): void {
  respondJson(res, STATUS_TEXT[status] ?? `${status}`, headers, body);
}
