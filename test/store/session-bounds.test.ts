import t from 'tap';
import { startTestServer, type TestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

// Issue 12 #3: sessions were not bounded. One client made 400 sessions of ~900 KB history in 18 s and
// every one stayed in memory for 24 h. Now memory holds only sessions with a connection (the others live
// in the store and come back at session_resume), the memory they hold is bounded, and so are the sessions
// per client address and in the store in all, each with its own error code.

interface SessionManagerHealth {
  active_sessions: number;
  held_bytes: number;
  store: { sessions: number };
}

async function sessionHealth(server: TestServer): Promise<SessionManagerHealth> {
  const body = (await (await fetch(`${server.httpUrl}/api/health`)).json()) as { services: { session_manager: SessionManagerHealth } };
  return body.services.session_manager;
}

const bigHistory = (tag: string) =>
  Array.from({ length: 1_000 }, (_, i) => ({ message_id: `${tag}-${i}`, sender: i % 2 ? '我' : '对方', content: '话'.repeat(900) }));

for (const persistence of ['true', 'false']) {
  t.test(`persistence=${persistence}: a session whose connection closed leaves memory and comes back whole at session_resume`, async (t) => {
    const env: Record<string, string> = { AUTO_SUGGEST: 'false', SESSION_PERSISTENCE_ENABLED: persistence, WEBSOCKET_MAX_MESSAGE_SIZE: String(16 * 1024 * 1024) };
    if (persistence === 'true') env.SESSION_PERSISTENCE_DIR = t.testdir();
    const server = await startTestServer(env);
    t.teardown(() => server.close());

    const ids: string[] = [];
    for (let c = 0; c < 5; c++) {
      const client = await TestClient.connect(server.wsUrl());
      ids.push(await client.startConversation({ response_count: 2, history_messages: bigHistory(`c${c}`) }));
      client.send('user_selected_response', { session_id: ids.at(-1)!, selected_content: `reply ${c}`, sender: 'me' });
      await client.next('message_recorded');
      t.equal((await sessionHealth(server)).active_sessions, 1, 'the attached session is held');
      await client.close();
    }
    // The close is handled after the client sees it: wait for the server's log line of the last one.
    await waitForLog(server, (line) => line.msg === 'connection closed', 5);
    const held = await sessionHealth(server);
    t.match(held, { active_sessions: 0, held_bytes: 0, store: { sessions: 5 } }, 'none held in memory, all in the store');

    const back = await TestClient.connect(server.wsUrl());
    t.teardown(() => back.close());
    back.send('session_resume', { session_id: ids[2]! });
    // message_count counts the session's own messages, not the 1,000 history messages (issue 11 #10).
    t.match((await back.next('session_restored')).data, { session_id: ids[2], message_count: 1 });
    back.send('get_message_history', { session_id: ids[2]! });
    const history = (await back.next('message_history_response')).data.messages as Array<{ message_id: string; content: string }>;
    t.equal(history.length, 1_001);
    t.same(history.at(-1), { ...history.at(-1), message_id: 'usr_001', content: 'reply 2' }, 'the session message too');
    const after = await sessionHealth(server);
    t.equal(after.active_sessions, 1);
    t.ok(after.held_bytes > 1_000 * 900 * 2, `held bytes estimated from the text (${after.held_bytes})`);
  });
}

async function waitForLog(server: TestServer, match: (line: Record<string, unknown>) => boolean, count: number): Promise<void> {
  // Log lines arrive through the event loop: yield to it until they are all there (bounded by the test timeout).
  while (server.logs.filter(match).length < count) await new Promise<void>((resolve) => setImmediate(resolve));
}

t.test('SESSION_MEMORY_MAX_MB bounds the sessions held; closing connections makes room again', async (t) => {
  const server = await startTestServer({
    AUTO_SUGGEST: 'false',
    SESSION_MEMORY_MAX_MB: '16',
    MAX_SESSIONS_PER_CONNECTION: '100',
    WEBSOCKET_MAX_MESSAGE_SIZE: String(16 * 1024 * 1024),
  });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  let created = 0;
  let refused: Record<string, unknown> | null = null;
  for (let i = 0; i < 20 && refused === null; i++) {
    client.send('conversation_start', { response_count: 1, history_messages: bigHistory(`m${i}`) });
    const reply = await client.next();
    if (reply.type === 'session_created') created++;
    else refused = reply.data;
  }
  t.match(refused, { session_id: null, error_code: 'SESSION_CAPACITY_EXCEEDED', details: `session_memory_max_bytes: ${16 * 1024 * 1024}` });
  t.ok(created >= 4 && created < 20, `${created} sessions of ~1.8 MB fit in 16 MB`);
  t.ok((await sessionHealth(server)).held_bytes <= 16 * 1024 * 1024);
  await client.close();
  await waitForLog(server, (line) => line.msg === 'connection closed', 1);

  const next = await TestClient.connect(server.wsUrl());
  t.teardown(() => next.close());
  t.ok(await next.startConversation({ response_count: 1, history_messages: bigHistory('after') }), 'room again once the others left memory');
});

t.test('text added to a held session counts against SESSION_MEMORY_MAX_MB: chosen replies past it are refused, nothing else changes', async (t) => {
  const server = await startTestServer({ AUTO_SUGGEST: 'false', SESSION_MEMORY_MAX_MB: '16', EVENT_RATE_PER_SECOND: '100000', EVENT_RATE_BURST: '100000' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());
  const sessionId = await client.startConversation({ response_count: 1 });
  const before = (await sessionHealth(server)).held_bytes;
  // One connection and one session: 20,000-character replies (~40 KB each held) grew memory without any bound.
  const reply = '话'.repeat(20_000);
  let recorded = 0;
  let refused: Record<string, any> | null = null;
  for (let i = 0; i < 600 && refused === null; i++) {
    client.send('user_selected_response', { session_id: sessionId, sender: '我', selected_content: reply });
    const event = await client.waitFor((e) => e.type === 'message_recorded' || e.type === 'error');
    if (event.type === 'message_recorded') recorded++;
    else refused = event.data;
  }
  t.match(refused, { session_id: sessionId, error_code: 'SESSION_CAPACITY_EXCEEDED', details: `session_memory_max_bytes: ${16 * 1024 * 1024}` });
  const health = await sessionHealth(server);
  t.ok(health.held_bytes >= before + recorded * 40_000, `held bytes count the ${recorded} replies added (${health.held_bytes})`);
  t.ok(health.held_bytes <= 16 * 1024 * 1024, 'and stay within the limit');
  client.send('session_resume', { session_id: sessionId });
  t.equal((await client.next('session_restored')).data.message_count, recorded, 'the refused reply was not stored');
  // A new recording would become one more message: refused up front too (one that is open always finishes).
  // First a reply that fills what is left to within a byte (record-size.ts: 2 bytes per character + 200).
  const remaining = 16 * 1024 * 1024 - (await sessionHealth(server)).held_bytes;
  const filler = 'x'.repeat(Math.floor((remaining - 200) / 2) - 'usr_000我'.length);
  client.send('user_selected_response', { session_id: sessionId, sender: '我', selected_content: filler });
  t.equal((await client.waitFor((e) => e.type === 'message_recorded' || e.type === 'error')).type, 'message_recorded', 'the last bytes taken');
  client.send('message_start', { session_id: sessionId, sender: '对方' });
  // (Opinion predictions of the replies may still come in between: the answer is the next error or status.)
  t.match(await client.waitFor((e) => e.type === 'error' || e.type === 'status_update'), { type: 'error', data: { error_code: 'SESSION_CAPACITY_EXCEEDED' } });
});

t.test('MAX_SESSIONS_PER_ADDRESS: ADDRESS_SESSION_LIMIT past it, room again after conversation_end, resume never refused', async (t) => {
  const server = await startTestServer({ AUTO_SUGGEST: 'false', MAX_SESSIONS_PER_ADDRESS: '3' });
  t.teardown(() => server.close());
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const client = await TestClient.connect(server.wsUrl());
    ids.push(await client.startConversation({ response_count: 1 }));
    await client.close();
  }
  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());
  client.send('conversation_start', { response_count: 1 });
  t.match((await client.next()).data, { session_id: null, error_code: 'ADDRESS_SESSION_LIMIT', details: 'max_sessions_per_address: 3' });

  client.send('session_resume', { session_id: ids[0]! });
  t.equal((await client.next()).type, 'session_restored', 'resume is not refused');
  client.send('conversation_end', { session_id: ids[0]! });
  await client.next('profile_archive');
  t.ok(await client.startConversation({ response_count: 1 }), 'an ended session frees its place');
  client.send('conversation_start', { response_count: 1 });
  t.match((await client.next()).data, { error_code: 'ADDRESS_SESSION_LIMIT' });
  t.ok(server.logs.some((line) => line.code === 'ADDRESS_SESSION_LIMIT'), 'logged');
});

t.test('MAX_SESSIONS: SESSION_CAPACITY_EXCEEDED once the store holds that many', async (t) => {
  const server = await startTestServer({ AUTO_SUGGEST: 'false', MAX_SESSIONS: '2', SESSION_PERSISTENCE_ENABLED: 'true', SESSION_PERSISTENCE_DIR: t.testdir() });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());
  const first = await client.startConversation({ response_count: 1 });
  await client.startConversation({ response_count: 1 });
  client.send('conversation_start', { response_count: 1 });
  t.match((await client.next()).data, { session_id: null, error_code: 'SESSION_CAPACITY_EXCEEDED', details: 'max_sessions: 2' });
  client.send('conversation_end', { session_id: first });
  await client.next('profile_archive');
  t.ok(await client.startConversation({ response_count: 1 }));
});

t.test('a session whose recording is still open stays held until the recording is parked, then leaves memory', async (t) => {
  const server = await startTestServer({ AUTO_SUGGEST: 'false', ORPHANED_RECORDING_GRACE_MS: '1000' });
  t.teardown(() => server.close());
  // ?extensions=all: transcript_partial proves the audio was recognised before the connection left.
  const client = await TestClient.connect(server.wsUrl('/conversation?extensions=all'));
  const sessionId = await client.startConversation({ response_count: 1 });
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  client.send('audio_stream', { session_id: sessionId, audio_chunk: Buffer.alloc(32_000).toString('base64') });
  await client.next('transcript_partial');
  await client.close();
  await waitForLog(server, (line) => line.msg === 'connection closed', 1);
  t.equal((await sessionHealth(server)).active_sessions, 1, 'held: its recogniser is kept for a reconnect');

  await waitForLog(server, (line) => typeof line.msg === 'string' && line.msg.startsWith('recording parked'), 1);
  const other = await TestClient.connect(server.wsUrl());
  t.teardown(() => other.close());
  await other.startConversation({ response_count: 1 });
  t.equal((await sessionHealth(server)).active_sessions, 1, 'the parked one left memory; only the new one is held');

  other.send('session_resume', { session_id: sessionId });
  t.match((await other.next('session_restored')).data, { session_id: sessionId, status: 'recording_message' });
  other.send('message_end', { session_id: sessionId });
  // (The mock recogniser also names the empty stream opened at resume: "[mock transcript: 0.00 s ...]".)
  t.match((await other.next('message_recorded')).data.message_content, /^\[mock transcript: 1\.00 s of audio, 32000 bytes\]/, 'the text recognised before is kept');
});

t.test('SESSION_STORE_MAX_MB: SESSION_CAPACITY_EXCEEDED once the stored sessions take that much; room again after an end', async (t) => {
  const server = await startTestServer({
    AUTO_SUGGEST: 'false',
    SESSION_STORE_MAX_MB: '16',
    SESSION_PERSISTENCE_ENABLED: 'true',
    SESSION_PERSISTENCE_DIR: t.testdir(),
    MAX_SESSIONS_PER_CONNECTION: '100',
    WEBSOCKET_MAX_MESSAGE_SIZE: String(16 * 1024 * 1024),
  });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());
  const created: string[] = [];
  let refused: Record<string, unknown> | null = null;
  for (let i = 0; i < 20 && refused === null; i++) {
    client.send('conversation_start', { response_count: 1, history_messages: bigHistory(`d${i}`) });
    const reply = await client.next();
    if (reply.type === 'session_created') created.push(reply.data.session_id as string);
    else refused = reply.data;
  }
  t.match(refused, { session_id: null, error_code: 'SESSION_CAPACITY_EXCEEDED', details: `session_store_max_bytes: ${16 * 1024 * 1024}` });
  t.ok(created.length >= 3 && created.length < 20, `${created.length} sessions of ~2.7 MB (UTF-8) fit in 16 MB`);
  client.send('conversation_end', { session_id: created[0]! });
  await client.next('profile_archive');
  t.ok(await client.startConversation({ response_count: 1, history_messages: bigHistory('again') }), 'the freed pages make room');
});
