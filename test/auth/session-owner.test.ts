import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { signToken } from '../../src/auth/sign-token.js';
import { startTestServer, type TestServer } from '../kit/start-server.js';
import { TestClient, type ServerEventJson } from '../kit/ws-client.js';

// Issue 14: with credentials on, a session belongs to the owner that created it. session_resume, the
// takeover/hold path and every other event from another owner get SESSION_NOT_FOUND, exactly as an
// unknown id; sessions created without credentials (owner null) stay open to anyone.

const SECRET = 'owner-test-secret-that-is-32-chars-or-more';
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

async function connectAs(t: { teardown(fn: () => unknown): void }, server: TestServer, sub: string): Promise<TestClient> {
  const token = await signToken(SECRET, { sub, ttl: '10m' });
  const client = await TestClient.connect(server.wsUrl(), { headers: { Authorization: `Bearer ${token}` } });
  t.teardown(() => client.close());
  return client;
}

/** The error an event for `sessionId` gets, with the id replaced so that answers for two ids compare. */
async function errorFor(client: TestClient, type: string, sessionId: string, data: Record<string, unknown> = {}): Promise<ServerEventJson> {
  client.send(type, { session_id: sessionId, ...data });
  const error = await client.next('error');
  return JSON.parse(JSON.stringify(error).replaceAll(sessionId, '<id>')) as ServerEventJson;
}

t.test('another owner cannot resume, take over or act on a session; the owner can', async (t) => {
  const server = await startTestServer({ AUTH_JWT_SECRET: SECRET });
  t.teardown(() => server.close());
  const alice = await connectAs(t, server, 'alice');
  const sessionId = await alice.startConversation();
  const bob = await connectAs(t, server, 'bob');

  // While alice is attached: no SESSION_NOT_FOUND difference between her session and an unknown id, and
  // bob's events are answered, not held for a session_resume (the takeover path).
  for (const [type, data] of [
    ['session_resume', {}],
    ['message_start', { sender: 'user' }],
    ['get_message_history', {}],
    ['manual_generate', {}],
    ['conversation_end', {}],
  ] as const) {
    const forHers = await errorFor(bob, type, sessionId, data);
    const forUnknown = await errorFor(bob, type, UNKNOWN_ID, data);
    t.same(forHers, forUnknown, `${type}: answered exactly as for an unknown id`);
    t.equal(forHers.data.error_code, 'SESSION_NOT_FOUND', type);
  }
  t.notOk(server.logs.some((line) => line.msg?.toString().startsWith('events held')), 'nothing of bob was held');

  // alice leaves: the session is detached (then only in the store); bob still cannot take it.
  await alice.close();
  await server.waitForLog((line) => line.msg === 'last connection left; session kept for resume' && line.sessionId === sessionId);
  t.equal((await errorFor(bob, 'message_start', sessionId, { sender: 'user' })).data.error_code, 'SESSION_NOT_FOUND', 'no takeover by an event');
  t.equal((await errorFor(bob, 'session_resume', sessionId)).data.error_code, 'SESSION_NOT_FOUND', 'no resume');

  // alice, on a new connection with a new token for the same sub, resumes it.
  const aliceAgain = await connectAs(t, server, 'alice');
  aliceAgain.send('session_resume', { session_id: sessionId });
  t.equal((await aliceAgain.next('session_restored')).data.session_id, sessionId);
  // Her session stayed untouched by bob: conversation_end from him did not end it.
  aliceAgain.send('get_message_history', { session_id: sessionId });
  t.ok(await aliceAgain.next('message_history_response'));
  t.notOk(aliceAgain.pending().some((event) => event.type === 'error'));
});

t.test('sessions stored before credentials were turned on (owner null) stay open to any owner', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-owner-'));
  const store = { SESSION_PERSISTENCE_ENABLED: 'true', SESSION_PERSISTENCE_DIR: dir };
  const open = await startTestServer(store);
  const anonymous = await TestClient.connect(open.wsUrl());
  const openId = await anonymous.startConversation();
  await anonymous.close();
  await open.close();

  const guarded = await startTestServer({ ...store, AUTH_JWT_SECRET: SECRET });
  t.teardown(() => guarded.close());
  const carol = await connectAs(t, guarded, 'carol');
  const ownedId = await carol.startConversation();
  await carol.close();
  await guarded.waitForLog((line) => line.msg === 'last connection left; session kept for resume' && line.sessionId === ownedId);

  const dave = await connectAs(t, guarded, 'dave');
  dave.send('session_resume', { session_id: openId });
  t.equal((await dave.next('session_restored')).data.session_id, openId, 'an owner-less session resumes for anyone');
  t.equal((await errorFor(dave, 'session_resume', ownedId)).data.error_code, 'SESSION_NOT_FOUND', "carol's stored session does not");
});
