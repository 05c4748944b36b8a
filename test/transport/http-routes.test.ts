import t from 'tap';
import { startTestServer } from '../kit/start-server.js';

t.test('every route answers with its status and JSON shape', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const response = await fetch(server.httpUrl + path, { headers });
    return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, any> };
  };

  const root = await get('/');
  t.equal(root.status, 200);
  t.same(Object.keys(root.body).sort(), ['service', 'status', 'timestamp', 'version']);
  t.match(root.body, { status: 'healthy', service: 'voxgate', version: /^\d+\.\d+\.\d+/ });

  const api = await get('/api/health');
  t.equal(api.status, 200, 'usable with the mock engines');
  t.equal(api.headers.get('content-type'), 'application/json; charset=utf-8');
  t.equal(api.body.status, 'degraded', 'degraded: the mock engines are not the real thing');
  t.same(Object.keys(api.body.services).sort(), ['llm', 'request_manager', 'session_manager', 'stt']);
  t.match(api.body.services.stt, { engine: 'mock', status: 'degraded', reason: /mock engine/ });
  t.match(api.body.services.llm, { engine: 'mock', status: 'degraded', reason: /mock/ });
  t.match(api.body.services.session_manager, { status: 'healthy', active_sessions: 0, store: { kind: 'memory' } });
  t.match(api.body.services.request_manager, { status: 'healthy', in_flight: 0 });
  t.match(api.body.transport, { implementation: 'native', status: 'healthy' });

  const conversation = await get('/conversation/health');
  t.equal(conversation.status, 200);
  t.same(Object.keys(conversation.body.services).sort(), ['llm_service', 'request_manager', 'session_manager', 'stt_service', 'websocket_handler']);
  t.equal(conversation.body.services.stt_service.engine, 'mock');

  t.same((await get('/livez')).body, { status: 'alive' });
  const ready = await get('/readyz');
  t.equal(ready.status, 200);
  t.same(ready.body, { status: 'ready' });

  const missing = await get('/no/such/route');
  t.equal(missing.status, 404);
  t.match(missing.body, { error: 'not_found', message: 'no route for GET /no/such/route' });
});

t.test('CORS follows ALLOWED_ORIGINS', async (t) => {
  const server = await startTestServer({ ALLOWED_ORIGINS: 'https://app.example, https://admin.example' });
  t.teardown(() => server.close());
  const allowed = await fetch(`${server.httpUrl}/api/health`, { headers: { origin: 'https://admin.example' } });
  t.equal(allowed.headers.get('access-control-allow-origin'), 'https://admin.example');
  const denied = await fetch(`${server.httpUrl}/api/health`, { headers: { origin: 'https://evil.example' } });
  t.equal(denied.headers.get('access-control-allow-origin'), null);
  const preflight = await fetch(`${server.httpUrl}/api/health`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-headers': 'content-type' },
  });
  t.equal(preflight.status, 204);
  t.equal(preflight.headers.get('access-control-allow-headers'), 'content-type');

  const open = await startTestServer();
  t.teardown(() => open.close());
  t.equal((await fetch(`${open.httpUrl}/`)).headers.get('access-control-allow-origin'), '*');
});
