import t from 'tap';
import { MockSttEngine } from '../../src/stt/mock-engine.js';
import type { SttEngine } from '../../src/stt/engine.js';
import { startTestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';
import { checkStillServes, rawExchange, upgradeRequest } from './raw-http.js';

// Every callback uWebSockets.js calls runs inside one guard (src/transport/edge-guard.ts): an exception
// there is logged, answered (HTTP 500 / close 1011), counted in /api/health, and the process goes on.
// Each test below makes one kind of callback throw through a real dependency (a log call, the speech
// engine's health report) and then checks that the server still serves.

const GUARD_LOG = 'exception at the transport edge (answered, process goes on)';

async function handlerFailures(httpUrl: string): Promise<number> {
  const health = (await (await fetch(`${httpUrl}/api/health`)).json()) as { transport: { handler_failures: number } };
  return health.transport.handler_failures;
}

t.test('a bad percent-escape in /ws/<id> is a 400, not a crash (it used to end the process)', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  for (const path of ['/ws/%', '/ws/%zz', '/ws/abc%', '/ws/%E0%A4%A', '/ws/%C0%AF%', '/ws/ok?extensions=%zz']) {
    const reply = await rawExchange(server.port, upgradeRequest(path));
    t.equal(reply.status, 400, `${path}: 400`);
  }
  t.equal(await checkStillServes(server), null, 'still serves');
  t.equal(await handlerFailures(server.httpUrl), 0, 'refused as bad input, not caught as an exception');
});

t.test('an upgrade handler that throws after it answered: not answered twice, counted, server goes on', async (t) => {
  let failing = true;
  const server = await startTestServer({}, {}, { failLogCall: (message) => failing && message === 'websocket upgrade refused' });
  t.teardown(() => server.close());
  // An unsupported version is refused (426), and logging the refusal, after the answer, throws.
  const reply = await rawExchange(server.port, upgradeRequest('/conversation', { 'Sec-WebSocket-Version': '8' }));
  t.equal(reply.status, 426, 'the refusal stands');
  t.equal(reply.text.match(/HTTP\/1\.1 /g)?.length, 1, 'exactly one response on the wire');
  t.equal(await handlerFailures(server.httpUrl), 1);
  t.match(server.logs.find((line) => line.msg === GUARD_LOG), {
    callback: 'http',
    route: 'upgrade /conversation',
    url: '/conversation',
    phase: 'done',
    err: { message: /injected fault/ },
  });
  failing = false;
  t.equal(await checkStillServes(server), null, 'still serves');
});

t.test('a throwing open handler: that socket is closed with 1011, others are served', async (t) => {
  let failing = true;
  const server = await startTestServer({}, {}, { failLogCall: (message) => failing && message === 'connection opened' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl('/ws/unlucky'));
  t.equal((await client.closed).code, 1011);
  t.equal(await handlerFailures(server.httpUrl), 1);
  t.match(server.logs.find((line) => line.msg === GUARD_LOG), { callback: 'open', clientId: 'unlucky', path: '/ws/unlucky' });
  failing = false;
  t.equal(await checkStillServes(server), null, 'still serves');
  const health = (await (await fetch(`${server.httpUrl}/api/health`)).json()) as { transport: { connections: number } };
  t.equal(health.transport.connections, 0, 'the failed connection is not counted as open');
});

t.test('a throwing message handler: close 1011 for that socket, the session survives for resume', async (t) => {
  let failing = false;
  const server = await startTestServer({}, {}, { failLogCall: (message) => failing && message === 'malformed event' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  const sessionId = await client.startConversation();
  failing = true;
  client.sendRaw('{not json');
  t.equal((await client.closed).code, 1011);
  failing = false;
  t.equal(await handlerFailures(server.httpUrl), 1);
  t.match(server.logs.find((line) => line.msg === GUARD_LOG), { callback: 'message' });
  const again = await TestClient.connect(server.wsUrl());
  t.teardown(() => again.close());
  again.send('session_resume', { session_id: sessionId });
  t.equal((await again.next()).type, 'session_restored', 'the client can reconnect and resume');
  t.equal(await checkStillServes(server), null, 'still serves');
});

t.test('a throwing close handler: logged and counted; the connection is still forgotten', async (t) => {
  let failing = true;
  const server = await startTestServer({}, {}, { failLogCall: (message) => failing && message === 'connection closed' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  await client.startConversation();
  await client.close();
  // The close handler runs when the server processes the close: wait for its guard line.
  await server.waitForLog((line) => line.msg === GUARD_LOG);
  failing = false;
  t.match(server.logs.find((line) => line.msg === GUARD_LOG), { callback: 'close' });
  const health = (await (await fetch(`${server.httpUrl}/api/health`)).json()) as { transport: { connections: number; handler_failures: number } };
  t.match(health.transport, { connections: 0, handler_failures: 1 });
  t.equal(await checkStillServes(server), null, 'still serves');
});

t.test('a throwing drain handler: close 1011, server goes on', async (t) => {
  let failing = false;
  const server = await startTestServer(
    { WEBSOCKET_MAX_BUFFERED_BYTES: String(256 * 1024 * 1024), AUTO_SUGGEST: 'false' },
    {},
    { failLogCall: (message) => failing && message === 'send buffer drained' },
  );
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  const history = Array.from({ length: 1000 }, (_, i) => ({ message_id: `h${i}`, sender: 'other', content: 'x'.repeat(900) }));
  const sessionId = await client.startConversation({ response_count: 1, history_messages: history });
  failing = true;
  // Stop reading, and ask for far more than the kernel buffers hold: uWS buffers the rest (backpressure)
  // and calls drain once the client reads again.
  const raw = (client.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  raw.pause();
  for (let i = 0; i < 40; i++) client.send('get_message_history', { session_id: sessionId });
  await server.waitForLog((line) => line.msg === 'send buffer backpressure');
  raw.resume();
  t.equal((await client.closed).code, 1011, 'closed by the guard');
  failing = false;
  t.equal(await handlerFailures(server.httpUrl), 1);
  t.match(server.logs.find((line) => line.msg === GUARD_LOG), { callback: 'drain' });
  t.equal(await checkStillServes(server), null, 'still serves');
});

t.test('a throwing HTTP route (its health source fails): 500, counted, then served again', async (t) => {
  let failing = false;
  const engine = new MockSttEngine({ sampleRate: 16_000, reason: 'test' });
  // The real engine, with a health report that fails while `failing` is set.
  const stt = new Proxy(engine, {
    get(target, property) {
      if (property === 'health' && failing) return () => { throw new Error('injected fault: health report failed'); };
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as SttEngine;
  const server = await startTestServer({}, { stt });
  t.teardown(() => server.close());
  failing = true;
  for (const path of ['/readyz', '/api/health', '/conversation/health']) t.equal((await fetch(`${server.httpUrl}${path}`)).status, 500, `${path}: 500`);
  failing = false;
  t.equal(await handlerFailures(server.httpUrl), 3);
  t.match(server.logs.find((line) => line.msg === GUARD_LOG), { callback: 'http', route: 'GET /readyz', method: 'get', url: '/readyz' });
  t.equal(await checkStillServes(server), null, 'still serves');
});
