import t from 'tap';
import { startTestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';
import { rawExchange, upgradeRequest } from './raw-http.js';

// What the upgrade takes from the request is bounded before anything uses it (issue 12 #9): the client
// id of /ws/<client_id> is a label copied into every log line of the connection.

t.test('client ids: up to 128 characters without control characters; longer or unsafe ones get 400', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  const accepted = ['phone-1', 'a'.repeat(128), '手机'.repeat(64), 'user@example.com', 'with space'];
  for (const id of accepted) {
    const client = await TestClient.connect(server.wsUrl(`/ws/${encodeURIComponent(id)}`));
    const opened = await server.waitForLog((line) => line.msg === 'connection opened' && line.clientId === id);
    t.ok(opened, `${id.slice(0, 20)}... (${[...id].length} chars) accepted and logged as is`);
    await client.close();
  }
  const refused = ['a'.repeat(129), '手'.repeat(129), 'x'.repeat(64 * 1024), 'line\nbreak', 'esc\u001b[31m', 'nul\u0000', 'bidi\u202e'];
  for (const id of refused) {
    const reply = await rawExchange(server.port, upgradeRequest(`/ws/${encodeURIComponent(id)}`));
    t.equal(reply.status, 400, `${JSON.stringify(id.slice(0, 20))} (${[...id].length} chars) refused`);
  }
  t.notOk(server.logs.some((line) => typeof line.url === 'string' && line.url.length > 256), 'no log line carries more than 256 characters of URL');
});

t.test('remoteAddress: the peer address, or with TRUST_PROXY the last X-Forwarded-For entry', async (t) => {
  const headers = { 'X-Forwarded-For': '198.51.100.7, 203.0.113.9' };
  const direct = await startTestServer();
  t.teardown(() => direct.close());
  const a = await TestClient.connect(direct.wsUrl('/ws/direct'), { headers });
  t.match(await direct.waitForLog((line) => line.msg === 'connection opened'), {
    remoteAddress: '127.0.0.1',
    peerAddress: '127.0.0.1',
    forwardedFor: '198.51.100.7, 203.0.113.9',
  });
  await a.close();

  const proxied = await startTestServer({ TRUST_PROXY: 'true' });
  t.teardown(() => proxied.close());
  const b = await TestClient.connect(proxied.wsUrl('/ws/proxied'), { headers });
  t.match(await proxied.waitForLog((line) => line.msg === 'connection opened' && line.clientId === 'proxied'), {
    remoteAddress: '203.0.113.9',
    peerAddress: '127.0.0.1',
  });
  await b.close();
  // A proxy that adds its own header line (HAProxy's `option forwardfor`) after the client's forged one:
  // the lines are one list (RFC 9110 5.3), and its last entry is still the proxy's.
  const lines = await TestClient.connect(proxied.wsUrl('/ws/two-lines'), {
    // node's http sends an array as repeated header lines (ws types headers as strings only).
    headers: { 'X-Forwarded-For': ['198.51.100.66', '203.0.113.10'] } as unknown as Record<string, string>,
  });
  t.match(await proxied.waitForLog((line) => line.msg === 'connection opened' && line.clientId === 'two-lines'), {
    remoteAddress: '203.0.113.10',
    forwardedFor: '198.51.100.66, 203.0.113.10',
  });
  await lines.close();
  const c = await TestClient.connect(proxied.wsUrl('/ws/forged'), { headers: { 'X-Forwarded-For': 'not-an-address' } });
  t.match(await proxied.waitForLog((line) => line.msg === 'connection opened' && line.clientId === 'forged'), { remoteAddress: '127.0.0.1' });
  await c.close();
});

t.test('remoteAddress with TRUSTED_PROXIES: X-Forwarded-For only from a listed peer', async (t) => {
  const headers = { 'X-Forwarded-For': '198.51.100.7, 127.0.0.2' };
  const listed = await startTestServer({ TRUSTED_PROXIES: '127.0.0.0/8' });
  t.teardown(() => listed.close());
  const a = await TestClient.connect(listed.wsUrl('/ws/listed'), { headers });
  t.match(await listed.waitForLog((line) => line.msg === 'connection opened' && line.clientId === 'listed'), {
    remoteAddress: '198.51.100.7',
    peerAddress: '127.0.0.1',
  }, 'the peer and the proxy hop 127.0.0.2 are ours: the client is the entry left of them');
  await a.close();
  const other = await startTestServer({ TRUSTED_PROXIES: '10.0.0.0/8' });
  t.teardown(() => other.close());
  const b = await TestClient.connect(other.wsUrl('/ws/unlisted'), { headers });
  t.match(await other.waitForLog((line) => line.msg === 'connection opened' && line.clientId === 'unlisted'), {
    remoteAddress: '127.0.0.1',
  }, 'a peer outside the list cannot choose its address');
  await b.close();
});
