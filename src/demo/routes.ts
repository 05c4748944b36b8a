// The browser demo page (GET /demo, docs/demo.md): a few static files served from memory. They are read
// once when the routes are registered (start-up), so a missing file fails start-up, not a visitor.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { EdgeGuard } from '../transport/edge-guard.js';
import { respond } from '../transport/http-response.js';

export interface DemoFile {
  readonly body: Buffer;
  readonly contentType: string;
  /** A strong validator of the body, quoted as the ETag header carries it. */
  readonly etag: string;
}

/** URL path -> file name in the static folder. /demo and /demo/ are the same page. */
const ROUTES: ReadonlyArray<readonly [path: string, file: string]> = [
  ['/demo', 'index.html'],
  ['/demo/', 'index.html'],
  ['/demo/demo.css', 'demo.css'],
  ['/demo/demo.js', 'demo.js'],
  ['/demo/worklet.js', 'worklet.js'],
];

const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
};

/**
 * Where the static files live. tsc does not copy them into dist/, so the compiled module
 * (dist/src/demo/routes.js) reads them from the source tree (src/demo/static), like the LLM prompts;
 * under tsx the module sits next to them.
 */
export function demoStaticDirs(moduleUrl: string): string[] {
  return [fileURLToPath(new URL('./static/', moduleUrl)), fileURLToPath(new URL('../../../src/demo/static/', moduleUrl))];
}

/** Reads every file of the page; throws naming the folders searched when they are not there. */
export function loadDemoFiles(dirs: readonly string[] = demoStaticDirs(import.meta.url)): Map<string, DemoFile> {
  const dir = dirs.find((candidate) => existsSync(join(candidate, 'index.html')));
  if (dir === undefined) throw new Error(`demo page files not found in ${dirs.join(' or ')} (DEMO_ENABLED=false turns the page off)`);
  const files = new Map<string, DemoFile>();
  for (const name of new Set(ROUTES.map(([, file]) => file))) {
    const body = readFileSync(join(dir, name));
    const extension = name.slice(name.lastIndexOf('.') + 1);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    files.set(name, { body, contentType: CONTENT_TYPES[extension] ?? 'application/octet-stream', etag });
  }
  return files;
}

// A Host header we are willing to echo into the CSP: a name or IP literal with an optional port. Anything
// else (a forged header with spaces or semicolons) gets the policy without the explicit WebSocket origins.
const SAFE_HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/**
 * The page may load only its own files and talk only to this server. `connect-src 'self'` covers
 * ws:/wss: to the same host in CSP 3 browsers; the explicit ws:// and wss:// origins are for older ones.
 */
export function contentSecurityPolicy(host: string): string {
  const sockets = SAFE_HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    // data: only for the page's empty favicon (which spares a request that would 404).
    "img-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * Registers GET /demo and its assets. Call before the catch-all 404 (`app.any('/*')`). Every handler
 * answers synchronously inside the request callback, as uWS requires.
 */
export function registerDemoRoutes(app: TemplatedApp, guard: EdgeGuard, files: ReadonlyMap<string, DemoFile> = loadDemoFiles()): void {
  for (const [path, name] of ROUTES) {
    const file = files.get(name);
    if (file === undefined) throw new Error(`demo page file ${name} was not loaded`);
    // Through the guard like every route: an exception in a uWS callback would end the process.
    app.get(path, guard.http(`GET ${path}`, (res, req) => sendFile(res, req, file)));
  }
}

function sendFile(res: HttpResponse, req: HttpRequest, file: DemoFile): void {
  // Read the request before cork: uWS invalidates `req` once the handler returns.
  const notModified = req.getHeader('if-none-match') === file.etag;
  const csp = contentSecurityPolicy(req.getHeader('host'));
  const body = notModified ? null : file.body;
  // respond(): one answer at most, and the guard knows whether a failure came before or during it.
  respond(res, () => {
    res.writeStatus(notModified ? '304 Not Modified' : '200 OK');
    res.writeHeader('Content-Type', file.contentType);
    // Revalidate every time (the ETag makes that a 304): a new version of voxgate never runs an old page.
    res.writeHeader('Cache-Control', 'no-cache');
    res.writeHeader('ETag', file.etag);
    res.writeHeader('Content-Security-Policy', csp);
    res.writeHeader('X-Content-Type-Options', 'nosniff');
    res.writeHeader('Referrer-Policy', 'no-referrer');
    res.writeHeader('X-Frame-Options', 'DENY');
    res.writeHeader('Permissions-Policy', 'microphone=(self), camera=(), geolocation=()');
    if (body === null) res.endWithoutBody();
    else res.end(body);
  });
}
