import t from 'tap';
import { signToken } from '../../src/auth/sign-token.js';
import { Quotas } from '../../src/quotas/quotas.js';
import { startTestServer, type TestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';
import { rawExchange, upgradeRequest } from '../transport/raw-http.js';

// Issue 14: quotas per owner and per client address refuse with their error (HTTP 429 at the upgrade,
// QUOTA_EXCEEDED after it) and recover when what they count ends.

const SECRET = 'quota-test-secret-that-is-32-chars-or-more';

async function connect(t: { teardown(fn: () => unknown): void }, server: TestServer, headers: Record<string, string> = {}): Promise<TestClient> {
  const client = await TestClient.connect(server.wsUrl(), { headers });
  t.teardown(() => client.close());
  return client;
}

async function closeAndWait(server: TestServer, client: TestClient): Promise<void> {
  const before = server.logs.filter((line) => line.msg === 'connection closed').length;
  await client.close();
  await server.waitForLog(() => server.logs.filter((line) => line.msg === 'connection closed').length > before);
}

t.test('connections per address: the one past the limit gets 429 with Retry-After; a closed one makes room', async (t) => {
  const server = await startTestServer({ QUOTA_CONNECTIONS: '2' });
  t.teardown(() => server.close());
  const first = await connect(t, server);
  await connect(t, server);
  const refused = await rawExchange(server.port, upgradeRequest('/conversation'));
  t.equal(refused.status, 429);
  t.match(refused.text, /Retry-After: 10\r\n/);
  t.match(refused.text, /"quota":"connections"/);
  await closeAndWait(server, first);
  await connect(t, server);
  t.pass('accepted again once one closed');
  const scraped = await (await fetch(`${server.httpUrl}/metrics`)).text();
  t.match(scraped, /voxgate_quota_refusals_total\{quota="connections"\} 1\n/);
  t.match(scraped, /voxgate_upgrades_refused_total\{reason="quota"\} 1\n/);
});

t.test('connections per owner: counted across addresses; another owner is not affected', async (t) => {
  const server = await startTestServer({ QUOTA_CONNECTIONS: '2', TRUST_PROXY: 'true', AUTH_JWT_SECRET: SECRET });
  t.teardown(() => server.close());
  const alice = `Bearer ${await signToken(SECRET, { sub: 'alice', ttl: '5m' })}`;
  const bob = `Bearer ${await signToken(SECRET, { sub: 'bob', ttl: '5m' })}`;
  await connect(t, server, { Authorization: alice, 'X-Forwarded-For': '198.51.100.1' });
  await connect(t, server, { Authorization: alice, 'X-Forwarded-For': '198.51.100.2' });
  const third = await TestClient.connect(server.wsUrl(), { headers: { Authorization: alice, 'X-Forwarded-For': '198.51.100.3' } }).then(
    () => 101,
    (err: { statusCode?: number }) => err.statusCode,
  );
  t.equal(third, 429, "alice's third connection, from a third address");
  await connect(t, server, { Authorization: bob, 'X-Forwarded-For': '198.51.100.4' });
  t.pass('bob connects');
});

t.test('live sessions: QUOTA_EXCEEDED past the limit (or the token grant), room again after conversation_end', async (t) => {
  const server = await startTestServer({ QUOTA_LIVE_SESSIONS: '2', AUTH_JWT_SECRET: SECRET, TRUST_PROXY: 'true' });
  t.teardown(() => server.close());
  const token = await signToken(SECRET, { sub: 'carol', ttl: '5m' });
  const client = await connect(t, server, { Authorization: `Bearer ${token}` });
  const first = await client.startConversation();
  await client.startConversation();
  client.send('conversation_start', { response_count: 3 });
  const refused = await client.next('error');
  t.match(refused.data, { error_code: 'QUOTA_EXCEEDED', message: '使用次数已达上限，请稍后再试' });
  t.match(refused.data.details, /quota: live_sessions; limit: 2; retry_after_seconds: 10/);
  client.send('conversation_end', { session_id: first });
  await server.waitForLog((line) => line.msg === 'session deleted' && line.sessionId === first);
  client.send('conversation_start', { response_count: 3 });
  const after = await client.waitFor((event) => event.type === 'session_created' || event.type === 'error');
  t.equal(after.type, 'session_created', `a new session fits once one ended: ${JSON.stringify(after.data)}`);

  const limited = await signToken(SECRET, { sub: 'dave', ttl: '5m', maxSessions: 1 });
  // From another address: carol's address is at its own limit of 2.
  const daveHeaders = { Authorization: `Bearer ${limited}`, 'X-Forwarded-For': '198.51.100.20' };
  const dave = await connect(t, server, daveHeaders);
  await dave.startConversation();
  dave.send('conversation_start', { response_count: 3 });
  t.match((await dave.next('error')).data.details, /quota: live_sessions; limit: 1;/, "the token's max_sessions grant");
  // A closed connection's sessions stop counting.
  await closeAndWait(server, dave);
  const daveAgain = await connect(t, server, daveHeaders);
  t.ok(await daveAgain.startConversation(), 'room again after the connection closed');
});

t.test('recordings: QUOTA_EXCEEDED for one more open recording; message_end makes room; a replacing message_start is not refused', async (t) => {
  const server = await startTestServer({ QUOTA_RECORDINGS: '1', AUTO_SUGGEST: 'false' });
  t.teardown(() => server.close());
  const client = await connect(t, server);
  const first = await client.startConversation();
  const second = await client.startConversation();
  client.send('message_start', { session_id: first, sender: 'user' });
  await client.next('status_update');
  client.send('message_start', { session_id: second, sender: 'user' });
  const refused = await client.next('error');
  t.match(refused.data, { error_code: 'QUOTA_EXCEEDED', session_id: second });
  t.match(refused.data.details, /quota: recordings; limit: 1; retry_after_seconds: 10/);
  client.send('message_start', { session_id: first, sender: 'other' });
  t.equal((await client.next('message_recorded')).data.session_id, first, 'a message_start on the recording session finishes it and begins anew');
  t.match(await client.next('status_update'), { data: { session_id: first, status: 'recording_message' } });
  client.send('message_end', { session_id: first });
  await client.next('message_recorded');
  client.send('message_start', { session_id: second, sender: 'user' });
  t.match(await client.next('status_update'), { data: { session_id: second, status: 'recording_message' } }, 'room again after message_end');
});

t.test('generations per minute: the one past the limit gets QUOTA_EXCEEDED with the seconds to wait', async (t) => {
  const server = await startTestServer({ QUOTA_GENERATIONS_PER_MINUTE: '2', AUTO_SUGGEST: 'false' });
  t.teardown(() => server.close());
  const client = await connect(t, server);
  const sessionId = await client.startConversation();
  for (let i = 0; i < 2; i++) {
    client.send('manual_generate', { session_id: sessionId });
    await client.next('llm_response');
  }
  client.send('manual_generate', { session_id: sessionId });
  const refused = await client.next('error');
  t.equal(refused.data.error_code, 'QUOTA_EXCEEDED');
  const match = /quota: generations_per_minute; limit: 2; retry_after_seconds: (\d+)/.exec(refused.data.details);
  t.ok(match && Number(match[1]) >= 1 && Number(match[1]) <= 60, refused.data.details);
  client.send('user_modification', { session_id: sessionId, modification: '更短' });
  t.equal((await client.next('error')).data.error_code, 'QUOTA_EXCEEDED', 'user_modification counts too');
});

t.test('the generation window slides: a slot frees 60 s after the oldest start; keys are forgotten when unused', async (t) => {
  const quotas = new Quotas({ connections: 1, liveSessions: 1, recordings: 1, generationsPerMinute: 2 });
  const subject = { owner: 'sub:erin', remoteAddress: '203.0.113.5', grants: null };
  quotas.takeGeneration(subject, 1_000);
  quotas.takeGeneration(subject, 21_000);
  t.throws(() => quotas.takeGeneration(subject, 30_000), { code: 'QUOTA_EXCEEDED', details: 'quota: generations_per_minute; limit: 2; retry_after_seconds: 31' });
  t.doesNotThrow(() => quotas.takeGeneration(subject, 61_000), 'the first start left the window');
  t.throws(() => quotas.takeGeneration(subject, 61_500), { code: 'QUOTA_EXCEEDED', details: 'quota: generations_per_minute; limit: 2; retry_after_seconds: 20' });
  const granted = { ...subject, grants: { endpoints: null, maxSessions: null, maxGenerationsPerMinute: 5 } };
  t.throws(() => quotas.takeGeneration(granted, 62_000), { code: 'QUOTA_EXCEEDED', details: 'quota: generations_per_minute; limit: 2; retry_after_seconds: 19' }, 'the address key still has its own limit');
  t.doesNotThrow(() => quotas.takeGeneration({ ...granted, remoteAddress: '203.0.113.6' }, 62_000), 'the grant raises the owner limit');

  const release = quotas.countConnection(subject);
  t.not(quotas.checkConnection(subject), null);
  release();
  release();
  t.equal(quotas.checkConnection(subject), null, 'released once, even if called twice');
  t.equal(quotas.trackedKeys, 3, 'erin as owner, her two addresses');
  quotas.takeGeneration({ owner: null, remoteAddress: '198.51.100.9', grants: null }, 200_000);
  t.equal(quotas.trackedKeys, 1, 'keys whose window emptied are forgotten: memory follows current use');
});

t.test('0 means no quota, and nothing is kept for it', async (t) => {
  const quotas = new Quotas({ connections: 0, liveSessions: 0, recordings: 0, generationsPerMinute: 0 });
  const subject = { owner: 'sub:frank', remoteAddress: '203.0.113.7', grants: null };
  for (let i = 0; i < 1000; i++) {
    quotas.takeGeneration(subject, i);
    quotas.countConnection(subject);
    quotas.assertLiveSession(subject);
    quotas.countLiveSession(subject);
    quotas.assertRecording(subject);
    quotas.countRecording(subject);
  }
  t.equal(quotas.checkConnection(subject), null);
  t.equal(quotas.trackedKeys, 0);
});
