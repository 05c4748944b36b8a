import t from 'tap';
import { startTestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

// Issue 11 #6: the app waits for session_created behind a loading screen with no timeout, so a
// conversation_start it can send is never refused: it is made to fit, and the log says what changed
// (one warning per interval, however many clients do it).

t.test('an oversized conversation_start from the app gets session_created, the newest history and a warning', async (t) => {
  const server = await startTestServer({ AUTO_SUGGEST: 'false' });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());

  const history = Array.from({ length: 1_200 }, (_, i) => ({ message_id: `m${i}`, sender: i % 2 ? '我' : '医生', content: `第${i}句` }));
  history[1_199]!.content = '长'.repeat(30_000);
  const frame = {
    scenario_description: '看病'.repeat(15_000),
    response_count: 3,
    history_messages: history,
    target_profile: { name: '王医生', age: 250, gender: 'neutral', relations: ['doctor'], personalities: [], preferences: ['明确问题'], taboos: ['含糊其辞'], common_topics: ['健康咨询'] },
  };
  const sessionId = await client.startConversation(frame);

  client.send('get_message_history', { session_id: sessionId });
  const messages = (await client.next('message_history_response')).data.messages as Array<{ message_id: string; content: string }>;
  t.equal(messages.length, 1_000);
  t.equal(messages[0]!.message_id, 'm200', 'the newest 1,000 kept');
  t.equal(messages[999]!.content.length, 20_000, 'an over-long text truncated');

  const warnings = server.logs.filter((line) => line.msg === 'conversation_start did not fit the limits: adjusted, not refused');
  t.equal(warnings.length, 1);
  t.match(warnings[0], { level: 40, sessionId, adjustments: [/scenario_description/, /history_messages: 1200 messages/, /content/, /target_profile\.age: 250/] });

  // The same again at once: no second warning line (debug only), still created.
  const second = await client.startConversation(frame);
  t.ok(second);
  const lines = server.logs.filter((line) => line.msg === 'conversation_start did not fit the limits: adjusted, not refused');
  t.same(lines.map((line) => line.level), [40, 20], 'rate-limited: the second is at debug');

  client.send('conversation_end', { session_id: sessionId });
  const archive = (await client.next('profile_archive')).data;
  const { age: _dropped, ...rest } = frame.target_profile;
  t.same(archive.target_profile, rest, 'the age is dropped, the rest as sent');
});
