import t from 'tap';
import type { TestClient } from '../kit/ws-client.js';
import { crash, settled, startOn } from '../store/persistence-kit.js';

// SIGKILL in the middle of several conversations, then a new process on the same data directory: every
// acknowledged change is back (profiles, history, messages, counts, scenario, modifications), sessions
// that were recording are still recording, and message ids continue where they were.

const pcm = (ms: number) => Buffer.alloc(ms * 32).toString('base64');

const userProfile = { name: '小明', age: 31, gender: 'male', relations: ['朋友'], personalities: ['calm'], preferences: [], taboos: ['politics'], common_topics: ['咖啡'] };
const targetProfile = { name: 'Barista', common_topics: ['weather'] };
const historyMessages = [
  { message_id: 'h1', sender: 'other', content: '你好，要点什么？' },
  { message_id: 'h2', sender: 'user', content: 'A latte, please' },
];

async function wholeConversation(client: TestClient): Promise<string> {
  const id = await client.startConversation({
    response_count: 3,
    scenario_description: 'ordering coffee',
    history_messages: historyMessages,
    user_profile: userProfile,
    target_profile: targetProfile,
  });
  client.send('response_count_update', { session_id: id, response_count: 5 });
  client.send('scenario_supplement', { session_id: id, supplement: 'ordering coffee, in a hurry' });
  client.send('user_modification', { session_id: id, modification: 'more polite' });
  await client.waitFor((e) => e.type === 'llm_response' && e.data.session_id === id);
  client.send('message_start', { session_id: id, sender: 'other' });
  client.send('audio_stream', { session_id: id, audio_chunk: pcm(500) });
  client.send('message_end', { session_id: id });
  const recorded = await client.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);
  t.equal(recorded.data.message_id, 'msg_001');
  client.send('manual_generate', { session_id: id, focused_message_ids: ['h1', 'msg_001'] });
  await client.waitFor((e) => e.type === 'llm_response' && e.data.session_id === id);
  client.send('user_selected_response', { session_id: id, selected_content: '好的，谢谢', sender: 'user' });
  const chosen = await client.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);
  t.same(chosen.data, { session_id: id, message_id: 'usr_002', message_content: null, sender: 'user' });
  return id;
}

async function recordingAtCrash(client: TestClient, withMessageFirst: boolean): Promise<string> {
  const id = await client.startConversation({ response_count: 2, history_messages: [historyMessages[0]] });
  if (withMessageFirst) {
    client.send('user_selected_response', { session_id: id, selected_content: 'first', sender: 'user' });
    await client.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);
  }
  client.send('message_start', { session_id: id, sender: 'other' });
  await client.waitFor((e) => e.type === 'status_update' && e.data.session_id === id && e.data.status === 'recording_message');
  client.send('audio_stream', { session_id: id, audio_chunk: pcm(250) });
  return id;
}

t.test('SIGKILL mid-conversation: a new process restores every acknowledged change of every session', async (t) => {
  const dataDir = t.testdir();
  const first = await startOn(t, dataDir);
  const a = await first.connect();
  const b = await first.connect();
  const full1 = await wholeConversation(a);
  const full2 = await wholeConversation(b);
  const rec1 = await recordingAtCrash(a, false);
  const rec2 = await recordingAtCrash(b, true);
  const before = new Map<string, Array<Record<string, unknown>>>();
  for (const [client, id] of [[a, full1], [b, full2], [a, rec1], [b, rec2]] as const) before.set(id, await settled(client, id));
  t.equal(before.get(full1)!.length, 4, 'two history messages, one recording, one chosen reply');

  await crash(first);

  const second = await startOn(t, dataDir);
  const c = await second.connect();
  for (const id of [full1, full2]) {
    c.send('session_resume', { session_id: id });
    const restored = await c.waitFor((e) => e.type === 'session_restored' && e.data.session_id === id);
    t.match(restored.data, {
      status: 'idle',
      message_count: 2, // session messages only, not the history (as the replaced backend counted)
      scenario_description: 'ordering coffee, in a hurry',
      response_count: 5,
      has_modifications: true,
    });
    t.same(await settled(c, id), before.get(id), 'message history identical: ids, senders, contents, times, types, order');
    c.send('manual_generate', { session_id: id });
    const suggestions = await c.waitFor((e) => e.type === 'llm_response' && e.data.session_id === id);
    t.equal(suggestions.data.suggestions.length, 5, 'the stored response count drives generation');
    c.send('user_selected_response', { session_id: id, selected_content: 'after restart', sender: 'user' });
    const next = await c.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);
    t.equal(next.data.message_id, 'usr_003', 'ids continue after the restart (session messages + 1)');
  }

  for (const [id, messagesBefore] of [[rec1, 1], [rec2, 2]] as const) {
    c.send('session_resume', { session_id: id });
    const restored = await c.waitFor((e) => e.type === 'session_restored' && e.data.session_id === id);
    // messagesBefore counts the one history message too; message_count is session messages only.
    t.match(restored.data, { status: 'recording_message', message_count: messagesBefore - 1, response_count: 2 });
    t.match(await c.next('status_update'), { data: { session_id: id, status: 'recording_message' } }, 'recording continues');
    t.same(await settled(c, id), before.get(id));
    c.send('audio_stream', { session_id: id, audio_chunk: pcm(100) });
    c.send('message_end', { session_id: id });
    const recorded = await c.waitFor((e) => e.type === 'message_recorded' && e.data.session_id === id);
    // The mock engine recognises no endpoint segments: only audio after the restart is in the text
    // (test/e2e/persistence-vosk.test.ts shows text from both sides with the real recogniser).
    t.same(recorded.data, { session_id: id, message_id: `msg_00${messagesBefore}`, message_content: '[mock transcript: 0.10 s of audio, 3200 bytes]', sender: 'other' });
  }

  c.send('conversation_end', { session_id: full1 });
  const archive = await c.waitFor((e) => e.type === 'profile_archive' && e.data.session_id === full1);
  t.same(archive.data, { session_id: full1, user_profile: userProfile, target_profile: targetProfile }, 'profiles exactly as sent before the crash');
  const deleted = await second.logLine((line) => line.msg === 'session deleted' && line.sessionId === full1);
  t.equal(deleted.reason, 'conversation_end');
});
