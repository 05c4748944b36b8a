import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { contentSecurityPolicy, demoStaticDirs, loadDemoFiles } from '../../src/demo/routes.js';
import { PROJECT_ROOT } from '../../src/version.js';
import { startTestServer } from '../kit/start-server.js';

const STATIC_DIR = join(PROJECT_ROOT, 'src/demo/static');

t.test('the page and its assets: bytes from the package, types, caching and a strict CSP', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  const host = `127.0.0.1:${server.port}`;

  const expected: Array<[string, string, string]> = [
    ['/demo', 'index.html', 'text/html; charset=utf-8'],
    ['/demo/', 'index.html', 'text/html; charset=utf-8'],
    ['/demo/demo.css', 'demo.css', 'text/css; charset=utf-8'],
    ['/demo/demo.js', 'demo.js', 'text/javascript; charset=utf-8'],
    ['/demo/worklet.js', 'worklet.js', 'text/javascript; charset=utf-8'],
  ];
  for (const [path, file, type] of expected) {
    const response = await fetch(server.httpUrl + path);
    t.equal(response.status, 200, path);
    t.equal(response.headers.get('content-type'), type, `${path} content type`);
    t.equal(response.headers.get('cache-control'), 'no-cache', `${path} is revalidated`);
    t.equal(response.headers.get('x-content-type-options'), 'nosniff');
    t.equal(response.headers.get('content-security-policy'), contentSecurityPolicy(host));
    t.ok(Buffer.from(await response.arrayBuffer()).equals(readFileSync(join(STATIC_DIR, file))), `${path} serves ${file}`);
  }
  const csp = contentSecurityPolicy(host);
  for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", `connect-src 'self' ws://${host} wss://${host}`, "frame-ancestors 'none'"]) {
    t.ok(csp.split('; ').includes(directive), `CSP has ${directive}`);
  }
  t.notMatch(csp, /unsafe-(inline|eval)/, 'no inline script or eval allowed');

  const missing = await fetch(`${server.httpUrl}/demo/nothing.js`);
  t.equal(missing.status, 404, 'other paths under /demo still reach the catch-all 404');
  t.match(await missing.json(), { error: 'not_found' });
});

t.test('every file the page references is served', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  const html = readFileSync(join(STATIC_DIR, 'index.html'), 'utf8');
  const script = readFileSync(join(STATIC_DIR, 'demo.js'), 'utf8');
  const referenced = new Set([...`${html}\n${script}`.matchAll(/['"](\/demo\/[\w.-]+)['"]/g)].map((match) => match[1]!));
  t.same([...referenced].sort(), ['/demo/demo.css', '/demo/demo.js', '/demo/worklet.js']);
  for (const path of referenced) t.equal((await fetch(server.httpUrl + path)).status, 200, path);
});

t.test('If-None-Match with the current ETag gets 304 without a body', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  const first = await fetch(`${server.httpUrl}/demo/demo.js`);
  const etag = first.headers.get('etag');
  t.match(etag, /^"[\w-]+"$/);
  const again = await fetch(`${server.httpUrl}/demo/demo.js`, { headers: { 'if-none-match': etag! } });
  t.equal(again.status, 304);
  t.equal((await again.arrayBuffer()).byteLength, 0);
  const stale = await fetch(`${server.httpUrl}/demo/demo.js`, { headers: { 'if-none-match': '"old"' } });
  t.equal(stale.status, 200);
});

t.test('DEMO_ENABLED=false: /demo is not served', async (t) => {
  const server = await startTestServer({ DEMO_ENABLED: 'false' });
  t.teardown(() => server.close());
  for (const path of ['/demo', '/demo/demo.js']) {
    const response = await fetch(server.httpUrl + path);
    t.equal(response.status, 404, path);
    t.match(await response.json(), { error: 'not_found' });
  }
});

t.test('a Host header that is not a plain host[:port] is not echoed into the CSP', async (t) => {
  t.equal(contentSecurityPolicy('demo.example:8443').includes("connect-src 'self' ws://demo.example:8443 wss://demo.example:8443"), true);
  t.equal(contentSecurityPolicy('[::1]:8000').includes('ws://[::1]:8000'), true);
  for (const forged of ["x; script-src 'unsafe-inline'", 'a b', '', 'host\r\nX: y']) {
    const csp = contentSecurityPolicy(forged);
    t.ok(csp.split('; ').includes("connect-src 'self'"), `${JSON.stringify(forged)}: only 'self'`);
    t.notMatch(csp, /unsafe-inline/);
  }
});

t.test('the static files are found from the source tree and from the compiled module; a missing folder fails loudly', async (t) => {
  const compiledModule = `file://${join(PROJECT_ROOT, 'dist/src/demo/routes.js')}`;
  t.ok(demoStaticDirs(compiledModule).includes(`${STATIC_DIR}/`), 'dist/src/demo/routes.js looks in src/demo/static/');
  const files = loadDemoFiles();
  t.same([...files.keys()].sort(), ['demo.css', 'demo.js', 'index.html', 'worklet.js']);
  const nowhere = join(t.testdir(), 'nowhere');
  t.throws(() => loadDemoFiles([nowhere]), { message: new RegExp(`demo page files not found in ${nowhere}`) });
});

t.test('the demo routes run inside the edge guard: a handler that throws is a 500, counted, and the server goes on', async (t) => {
  const uWS = (await import('uWebSockets.js')).default;
  const { pino } = await import('pino');
  const { EdgeGuard } = await import('../../src/transport/edge-guard.js');
  const { registerDemoRoutes } = await import('../../src/demo/routes.js');
  const files = new Map(loadDemoFiles());
  const page = files.get('index.html')!;
  // A fault inside the handler (here: reading the body), as any future change could bring.
  files.set('index.html', { contentType: page.contentType, etag: page.etag, get body(): Buffer { throw new Error('injected fault'); } });
  const guard = new EdgeGuard(pino({ level: 'silent' }));
  const app = uWS.App();
  registerDemoRoutes(app, guard, files);
  const listening = await new Promise<import('uWebSockets.js').us_listen_socket>((resolve, reject) => {
    app.listen('127.0.0.1', 0, (socket) => (socket ? resolve(socket) : reject(new Error('listen failed'))));
  });
  t.teardown(() => uWS.us_listen_socket_close(listening));
  const port = uWS.us_socket_local_port(listening);
  t.equal((await fetch(`http://127.0.0.1:${port}/demo`)).status, 500, 'answered 500, not a crash');
  t.equal(guard.failureCount, 1, 'counted');
  t.equal((await fetch(`http://127.0.0.1:${port}/demo/demo.css`)).status, 200, 'still serves');
});
