import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { spawnServer } from '../kit/spawn-server.js';
import { TestClient } from '../kit/ws-client.js';

// The real process: start-up failures and SIGTERM draining, as an operator sees them.

t.test('an invalid setting stops start-up with a message naming key, value and expectation', async (t) => {
  const server = spawnServer({ PORT: 'abc', OPENROUTER_TEMPERATURE: '7' });
  t.teardown(() => server.kill());
  const { code } = await server.exited;
  t.equal(code, 2);
  t.match(server.stderr(), /PORT="abc": expected an integer 0\.\.65535/);
  t.match(server.stderr(), /OPENROUTER_TEMPERATURE="7": expected a number 0\.\.2/);
  t.notMatch(server.stderr(), /at .*\.ts:\d+/, 'no stack trace');
});

t.test('a .env file is read; the environment wins over it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-env-'));
  writeFileSync(join(dir, '.env'), 'STT_ENGINE=mock\nLOG_LEVEL=info\nMAX_SESSIONS_PER_CONNECTION=nonsense\n');
  const bad = spawnServer({}, { cwd: dir });
  t.teardown(() => bad.kill());
  t.equal((await bad.exited).code, 2);
  t.match(bad.stderr(), /MAX_SESSIONS_PER_CONNECTION="nonsense"/);

  const good = spawnServer({ MAX_SESSIONS_PER_CONNECTION: '3', OPENROUTER_API_KEY: 'sk-secret-value-123' }, { cwd: dir });
  t.teardown(() => good.kill());
  const port = await good.port;
  const health = (await (await fetch(`http://127.0.0.1:${port}/api/health`)).json()) as Record<string, any>;
  t.equal(health.services.stt.engine, 'mock', 'STT_ENGINE from .env');
  good.kill('SIGTERM');
  await good.exited;
  t.notMatch(good.stdout(), /sk-secret-value-123/, 'the API key never reaches the log');
});

t.test('LOG_FILE: the same JSON lines also go to a size-rotated file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-log-'));
  const server = spawnServer({ STT_ENGINE: 'mock', SESSION_PERSISTENCE_ENABLED: 'false', LOG_FILE: join(dir, 'logs/app.log'), LOG_FILE_MAX_SIZE: '1m' });
  t.teardown(() => server.kill());
  await server.port;
  server.kill('SIGTERM');
  t.equal((await server.exited).code, 0);
  // pino-roll numbers the files it rotates through: app.1.log, app.2.log, ...
  const lines = readFileSync(join(dir, 'logs/app.1.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  t.ok(lines.some((line) => line.msg === 'voxgate listening'));
  t.ok(lines.some((line) => line.msg === 'shutdown complete'), 'flushed at shutdown');
  t.match(server.stdout(), /"msg":"voxgate listening"/, 'stdout still gets the lines');
});

t.test('the pure-JS uWebSockets.js fallback is refused unless allowed', async (t) => {
  const refused = spawnServer({ UWS_USE_FALLBACK: '1', STT_ENGINE: 'mock' });
  t.teardown(() => refused.kill());
  t.equal((await refused.exited).code, 1);
  t.match(refused.stderr(), /fell back to its slow pure-JS server.*ALLOW_FALLBACK_TRANSPORT=true.*NATIVE_TRANSPORT_MISSING/s);

  const allowed = spawnServer({ UWS_USE_FALLBACK: '1', ALLOW_FALLBACK_TRANSPORT: 'true', STT_ENGINE: 'mock' });
  t.teardown(() => allowed.kill());
  const port = await allowed.port;
  const health = (await (await fetch(`http://127.0.0.1:${port}/api/health`)).json()) as Record<string, any>;
  t.match(health.transport, { implementation: 'fallback', status: 'degraded' });
  t.equal(health.status, 'degraded');
});

t.test('SIGTERM drains: readyz 503, upgrades refused, work in flight finishes, then 1001, exit 0', async (t) => {
  // A generation in flight (the mock LLM streams slowly) keeps the drain going; it ends when it is done.
  const server = spawnServer({ STT_ENGINE: 'mock', SHUTDOWN_DRAIN_MS: '60000', AUTO_SUGGEST: 'false', MOCK_LLM_DELTA_DELAY_MS: '150' });
  t.teardown(() => server.kill());
  const port = await server.port;
  const client = await TestClient.connect(`ws://127.0.0.1:${port}/conversation`);
  const sessionId = await client.startConversation();
  t.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
  client.send('manual_generate', { session_id: sessionId });
  await client.next('status_update');

  server.kill('SIGTERM');
  await server.logLine((line) => line.msg === 'shutting down: draining');
  t.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 503, 'readyz turns 503 while draining');
  await t.rejects(TestClient.connect(`ws://127.0.0.1:${port}/conversation`), { message: 'HTTP 503' }, 'no new connections');

  const closed = await client.closed;
  t.ok(client.received.some((event) => event.type === 'llm_response'), 'the generation in flight finished before the close');
  t.equal(closed.code, 1001);
  t.equal(closed.reason, 'server shutting down');
  const exit = await server.exited;
  t.equal(exit.code, 0, 'exits 0');
  t.match(server.stdout(), /"msg":"shutdown complete"/);
});

t.test('a second signal exits at once', async (t) => {
  // A generation that takes minutes (10 s per streamed piece) keeps the drain waiting.
  const server = spawnServer({ STT_ENGINE: 'mock', SHUTDOWN_DRAIN_MS: '60000', AUTO_SUGGEST: 'false', MOCK_LLM_DELTA_DELAY_MS: '10000' });
  t.teardown(() => server.kill());
  const port = await server.port;
  const client = await TestClient.connect(`ws://127.0.0.1:${port}/conversation`);
  t.teardown(() => client.close());
  const sessionId = await client.startConversation();
  client.send('manual_generate', { session_id: sessionId });
  await client.next('status_update');
  server.kill('SIGTERM');
  await server.logLine((line) => line.msg === 'shutting down: draining');
  server.kill('SIGINT');
  t.equal((await server.exited).code, 130);
});
