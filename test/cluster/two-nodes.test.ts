import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { TestClient } from '../kit/ws-client.js';
import { crash, settled, startOn, type RunningServer } from '../store/persistence-kit.js';
import { startRedis, type RedisProcess } from './redis-kit.js';

// Two voxgate processes on one real Redis (SESSION_STORE=redis), as behind a proxy: a conversation on
// node A goes on on node B when A dies (SIGKILL), when A is alive (handover), and when A was paused past
// its lease (its later writes are fenced; B's data stays intact). Waits on events and log lines only.

const pcm = (ms: number) => Buffer.alloc(ms * 32).toString('base64');
const LEASE_MS = 1_000;

async function node(t: Test, redis: RedisProcess, name: string, settings: Record<string, string> = { REDIS_LEASE_MS: String(LEASE_MS), REDIS_HANDOVER_TIMEOUT_MS: '8000' }): Promise<RunningServer> {
  // The data directory goes unused (sessions are in Redis); each node gets its own all the same.
  return startOn(t, mkdtempSync(join(tmpdir(), 'voxgate-node-')), {
    SESSION_STORE: 'redis',
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: `two-nodes-${t.name.length}:`,
    NODE_ID: name,
    ...settings,
  });
}

/** A conversation with a chosen reply, then a recording left open with audio sent. */
async function conversationRecording(client: TestClient): Promise<string> {
  const id = await client.startConversation({ response_count: 2, history_messages: [{ message_id: 'h1', sender: 'other', content: '你好' }] });
  client.send('user_modification', { session_id: id, modification: 'more polite' });
  client.send('user_selected_response', { session_id: id, selected_content: '好的', sender: 'user' });
  await client.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);
  client.send('message_start', { session_id: id, sender: 'other' });
  await client.waitFor((e) => e.type === 'status_update' && e.data.session_id === id && e.data.status === 'recording_message');
  client.send('audio_stream', { session_id: id, audio_chunk: pcm(250) });
  return id;
}

/** On `client` (connected to the surviving node): the session is back, recording, and goes on. */
async function resumesAndContinues(t: Test, client: TestClient, id: string, before: Array<Record<string, unknown>>, content?: string): Promise<void> {
  client.send('session_resume', { session_id: id });
  const restored = await client.waitFor((e) => e.type === 'session_restored' && e.data.session_id === id, 20_000);
  t.match(restored.data, { status: 'recording_message', message_count: 1, response_count: 2, has_modifications: true });
  t.same(await settled(client, id), before, 'every acknowledged message is back, identical');
  client.send('audio_stream', { session_id: id, audio_chunk: pcm(100) });
  client.send('message_end', { session_id: id });
  const recorded = await client.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);
  t.match(recorded.data, { session_id: id, message_id: 'msg_002', sender: 'other' }, 'the open recording is finished on the new node with its message id');
  if (content !== undefined) t.equal(recorded.data.message_content, content, 'audio sent before the resume is in the message');
  t.equal(client.received.filter((e) => e.type === 'error').length, 0, 'the reconnecting client saw no error');
  client.send('user_selected_response', { session_id: id, selected_content: 'after the move', sender: 'user' });
  const next = await client.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);
  t.equal(next.data.message_id, 'usr_003', 'the conversation goes on');
}

t.test('node A is SIGKILLed mid-recording: node B serves the session once A\'s lease expires', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'always' });
  const [a, b] = await Promise.all([node(t, redis, 'node-a'), node(t, redis, 'node-b')]);
  const onA = await a.connect();
  const id = await conversationRecording(onA);
  const before = await settled(onA, id);
  t.equal(before.length, 2, 'the history message and the chosen reply');

  await crash(a);

  const onB = await b.connect();
  // The app's reconnect sends its queued audio before session_resume: held until the resume, then recorded.
  onB.send('audio_stream', { session_id: id, audio_chunk: pcm(100) });
  await resumesAndContinues(t, onB, id, before, '[mock transcript: 0.20 s of audio, 6400 bytes]');
});

t.test('default settings: the first session_resume after node A\'s SIGKILL succeeds (the app retries 5 times over ~31 s)', async (t) => {
  // REDIS_LEASE_MS 5000 < REDIS_HANDOVER_TIMEOUT_MS 8000: the resume waits out the dead node's lease.
  const redis = await startRedis(t, { appendfsync: 'always' });
  const [a, b] = await Promise.all([node(t, redis, 'node-a', {}), node(t, redis, 'node-b', {})]);
  const onA = await a.connect();
  const id = await conversationRecording(onA);
  const before = await settled(onA, id);
  await crash(a);
  const onB = await b.connect();
  await resumesAndContinues(t, onB, id, before);
});

t.test('node A alive: a session_resume on node B gets the session handed over', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'always' });
  const [a, b] = await Promise.all([node(t, redis, 'node-a'), node(t, redis, 'node-b')]);
  const onA = await a.connect();
  const id = await conversationRecording(onA);
  const before = await settled(onA, id);

  const onB = await b.connect();
  const moved = onA.waitFor((e) => e.type === 'error' && e.data.session_id === id, 20_000);
  await resumesAndContinues(t, onB, id, before);
  t.match((await moved).data, { error_code: 'SESSION_MOVED' }, 'A told its client the session moved');
  await a.logLine((line) => line.msg === 'handover requested by another node' && line.by === 'node-b');
  await a.logLine((line) => line.msg === 'recording parked: no connection; its recogniser was released' && line.sessionId === id);
});

t.test('the app\'s reconnect on node B: events sent before session_resume are held, then run after it', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'always' });
  const [a, b] = await Promise.all([node(t, redis, 'node-a'), node(t, redis, 'node-b')]);
  const onA = await a.connect();
  const id = await onA.startConversation({ response_count: 2 });
  const onB = await b.connect();
  onB.send('user_selected_response', { session_id: id, selected_content: 'queued before the resume', sender: 'user' });
  await b.logLine((line) => line.msg === 'events held: the session is attached to another connection; waiting for session_resume' && line.sessionId === id);
  onA.send('user_selected_response', { session_id: id, selected_content: 'still on A', sender: 'user' });
  await onA.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);

  onB.send('session_resume', { session_id: id });
  await onB.waitFor((e) => e.type === 'session_restored' && e.data.session_id === id, 20_000);
  const held = await onB.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);
  t.equal(held.data.message_id, 'usr_002', 'the held event ran after the resume, on B');
  t.equal(onB.received.filter((e) => e.type === 'error').length, 0, 'no error on B');
  t.same((await settled(onB, id)).map((m) => m.content), ['still on A', 'queued before the resume']);
  t.match((await onA.waitFor((e) => e.type === 'error' && e.data.session_id === id)).data, { error_code: 'SESSION_MOVED' });
});

t.test('a stale owner (SIGSTOP past its lease, then SIGCONT) cannot write over the new owner', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'always' });
  const [a, b] = await Promise.all([node(t, redis, 'node-a'), node(t, redis, 'node-b')]);
  t.teardown(() => a.server.kill('SIGCONT'));
  const onA = await a.connect();
  const id = await onA.startConversation({ response_count: 2 });
  onA.send('user_selected_response', { session_id: id, selected_content: 'before the pause', sender: 'user' });
  await onA.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);

  a.server.kill('SIGSTOP');
  const onB = await b.connect();
  onB.send('session_resume', { session_id: id });
  await onB.waitFor((e) => e.type === 'session_restored' && e.data.session_id === id, 20_000);
  onB.send('user_selected_response', { session_id: id, selected_content: 'on node B', sender: 'user' });
  await onB.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);

  a.server.kill('SIGCONT');
  onA.send('user_selected_response', { session_id: id, selected_content: 'stale write from A', sender: 'user' });
  const refused = await onA.waitFor((e) => e.type === 'error' && e.data.session_id === id, 20_000);
  t.match(refused.data, { error_code: 'SESSION_MOVED' }, 'A\'s write is refused (fenced), or A detached the session first');
  const onA2 = onA.pending().find((e) => e.type === 'message_recorded' && e.data.message_content === 'stale write from A');
  t.equal(onA2, undefined, 'A never acknowledged the stale write');

  const history = await settled(onB, id);
  t.same(history.map((m) => m.content), ['before the pause', 'on node B'], 'the new owner\'s data is intact');
});

t.test('Redis restarted mid-conversation (AOF appendfsync always): nothing acknowledged is lost', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'always' });
  const a = await node(t, redis, 'node-a');
  const client = await a.connect();
  const id = await client.startConversation({ response_count: 2 });
  client.send('user_selected_response', { session_id: id, selected_content: 'before the restart', sender: 'user' });
  await client.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);

  await redis.stop('SIGKILL');
  client.send('user_selected_response', { session_id: id, selected_content: 'while Redis is down', sender: 'user' });
  const refused = await client.waitFor((e) => e.type === 'error' && e.data.session_id === id);
  t.match(refused.data, { error_code: 'STORE_UNAVAILABLE' }, 'the user is told; nothing is acknowledged');
  const other = await a.connect();
  other.send('conversation_start', { response_count: 1 });
  t.match((await other.next('error')).data, { error_code: 'STORE_UNAVAILABLE' }, 'new sessions are refused with a clear error');
  await a.logLine((line) => line.msg === 'Redis connection lost: new sessions are refused until it is back');
  const readyz = await fetch(`http://127.0.0.1:${a.port}/readyz`);
  t.equal(readyz.status, 503, '/readyz says 503 while Redis is down: the proxy sends new connections elsewhere');

  await redis.restart();
  await a.logLine((line) => line.msg === 'Redis reachable again: the session store works');
  client.send('user_selected_response', { session_id: id, selected_content: 'after the restart', sender: 'user' });
  await client.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);
  t.same((await settled(client, id)).map((m) => m.content), ['before the restart', 'after the restart'], 'the AOF kept every acknowledged write');
});

t.test('Redis down mid-recording: the recording goes on, and is stored when Redis is back', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'always' });
  const a = await node(t, redis, 'node-a');
  const client = await a.connect();
  const id = await client.startConversation({ response_count: 2 });
  client.send('message_start', { session_id: id, sender: 'other' });
  await client.waitFor((e) => e.type === 'status_update' && e.data.session_id === id && e.data.status === 'recording_message');
  client.send('audio_stream', { session_id: id, audio_chunk: pcm(200) });

  await redis.stop('SIGKILL');
  await a.logLine((line) => line.msg === 'Redis connection lost: new sessions are refused until it is back');
  client.send('audio_stream', { session_id: id, audio_chunk: pcm(300) });
  const before = client.received.length;
  await redis.restart();
  await a.logLine((line) => line.msg === 'Redis reachable again: the session store works');
  t.equal(client.received.slice(before).filter((e) => e.type === 'error').length, 0, 'audio while Redis was down was taken without an error');
  client.send('message_end', { session_id: id });
  const recorded = await client.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);
  t.same(recorded.data, { session_id: id, message_id: 'msg_001', message_content: '[mock transcript: 0.50 s of audio, 16000 bytes]', sender: 'other' }, 'all the audio, before and during the outage, is in the stored message');
  t.same((await settled(client, id)).map((m) => m.message_id), ['msg_001'], 'and it is stored');
});

t.test('node A shut down (SIGTERM): it releases its leases, so node B serves the session without waiting for expiry', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'always' });
  // A lease far longer than the wait below: only a released lease lets B in.
  const settings = { REDIS_LEASE_MS: '300000', REDIS_HANDOVER_TIMEOUT_MS: '600000', SHUTDOWN_DRAIN_MS: '0' };
  const [a, b] = await Promise.all([node(t, redis, 'node-a', settings), node(t, redis, 'node-b', settings)]);
  const onA = await a.connect();
  const id = await onA.startConversation({ response_count: 2 });
  onA.send('user_selected_response', { session_id: id, selected_content: 'before the shutdown', sender: 'user' });
  await onA.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);
  a.server.kill('SIGTERM');
  t.match(await a.server.exited, { code: 0 });
  const onB = await b.connect();
  onB.send('session_resume', { session_id: id });
  await onB.waitFor((e) => e.type === 'session_restored' && e.data.session_id === id);
  t.same((await settled(onB, id)).map((m) => m.content), ['before the shutdown']);
});
