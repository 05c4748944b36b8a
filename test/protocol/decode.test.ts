import t from 'tap';
import { decodeClientEvent } from '../../src/protocol/decode.js';
import { exceedsJsonDepth } from '../../src/protocol/json-depth.js';
import { LIMITS } from '../../src/protocol/limits.js';

// The edge of the protocol: what a frame may hold before anything else touches it, and a conversation_start
// that is made to fit instead of refused (the app waits for session_created with no timeout).

const nested = (depth: number, inner = ''): string => '['.repeat(depth) + inner + ']'.repeat(depth);
const frame = (type: string, data: unknown): string => JSON.stringify({ type, data });

function decodedStart(data: Record<string, unknown>) {
  const result = decodeClientEvent(frame('conversation_start', data));
  if (!result.ok) throw new Error(`refused: ${result.error.code} ${result.error.details}`);
  if (result.event.type !== 'conversation_start') throw new Error(`decoded as ${result.event.type}`);
  return result.event.data;
}

t.test('json depth: counts brackets outside strings only, stops past the limit', async (t) => {
  t.equal(exceedsJsonDepth(nested(4), 4), false);
  t.equal(exceedsJsonDepth(nested(5), 4), true);
  t.equal(exceedsJsonDepth('{"a":{"b":[1,{"c":[]}]}}', 5), false);
  t.equal(exceedsJsonDepth('{"a":{"b":[1,{"c":[[]]}]}}', 5), true);
  t.equal(exceedsJsonDepth(JSON.stringify({ text: '[[[[[[[[{{{{{{' }), 2), false, 'brackets inside a string');
  t.equal(exceedsJsonDepth(JSON.stringify({ text: 'a "quoted" [[[[ \\ back\\slash' }), 2), false, 'escaped quotes and backslashes');
  t.equal(exceedsJsonDepth(`{"a":"x\\\\"${'['.repeat(5)}`, 3), true, 'an escaped backslash ends the string before the brackets');
  t.equal(exceedsJsonDepth('["unterminated [[[[[[', 2), false, 'left to JSON.parse');
  t.equal(exceedsJsonDepth(']]]]][[', 3), false, 'unbalanced closers do not hide openers from the count, nor crash');
});

t.test('a 20,000-deep frame is refused as INVALID_EVENT_DATA before JSON.parse', async (t) => {
  const deep = `{"type":"conversation_start","data":{"response_count":3,"user_profile":{"name":"a","extra":${nested(20_000)}}}}`;
  const result = decodeClientEvent(deep);
  t.match(result, { ok: false, error: { code: 'INVALID_EVENT_DATA', details: `max_json_depth: ${LIMITS.jsonDepth}` } });

  // The limit itself is fine (unknown fields are dropped afterwards).
  const atLimit = `{"type":"conversation_start","data":{"response_count":3,"user_profile":{"extra":${nested(LIMITS.jsonDepth - 3)}}}}`;
  const ok = decodeClientEvent(atLimit);
  t.equal(ok.ok, true);
  if (ok.ok && ok.event.type === 'conversation_start') t.same(ok.event.data.user_profile, {}, 'the unknown field is not kept');
});

t.test("the app's own conversation_start is taken exactly as sent", async (t) => {
  // main_processing.dart: scenario, clamped response_count, history with ids ('' when the app had none), a target profile.
  const data = decodedStart({
    scenario_description: '当前对话',
    response_count: 3,
    history_messages: [
      { message_id: '', sender: '', content: '' },
      { message_id: 'm1', sender: '我', content: '你好' },
    ],
    target_profile: {
      name: '王医生',
      age: 0,
      gender: 'neutral',
      relations: ['doctor'],
      personalities: [],
      preferences: ['明确问题'],
      taboos: ['含糊其辞'],
      common_topics: ['健康咨询', '医疗建议', '康复指导'],
    },
  });
  t.same(data, {
    response_count: 3,
    scenario_description: '当前对话',
    history_messages: [
      { message_id: '', sender: '', content: '' },
      { message_id: 'm1', sender: '我', content: '你好' },
    ],
    user_profile: null,
    target_profile: {
      name: '王医生',
      age: 0,
      gender: 'neutral',
      relations: ['doctor'],
      personalities: [],
      preferences: ['明确问题'],
      taboos: ['含糊其辞'],
      common_topics: ['健康咨询', '医疗建议', '康复指导'],
    },
    adjustments: [],
  });
});

t.test('more than 1,000 history messages: the newest 1,000 are kept, with an adjustment', async (t) => {
  const history = Array.from({ length: 1_500 }, (_, i) => ({ message_id: `h${i}`, sender: 's', content: `c${i}` }));
  const data = decodedStart({ response_count: 1, history_messages: history });
  t.equal(data.history_messages.length, LIMITS.historyMessages);
  t.equal(data.history_messages[0]!.message_id, 'h500', 'the oldest 500 dropped');
  t.equal(data.history_messages.at(-1)!.message_id, 'h1499', 'the newest kept');
  t.match(data.adjustments, [/history_messages: 1500 messages, the oldest 500 dropped/]);
});

t.test('out-of-range or unusable ages are dropped; digit strings are read as the replaced backend did', async (t) => {
  const ageOf = (age: unknown) => decodedStart({ response_count: 1, user_profile: { name: 'x', age } });
  for (const bad of [201, -1, 25.5, 1e20, 9223372036854775807, 'thirty', true, [30], { years: 3 }]) {
    const data = ageOf(bad);
    t.notOk('age' in data.user_profile!, `age ${JSON.stringify(bad)} dropped`);
    t.same(data.user_profile, { name: 'x' }, 'the rest of the profile kept');
    t.match(data.adjustments, [/user_profile\.age: .* is not an age 0\.\.200, dropped/]);
  }
  t.same(ageOf(0).user_profile, { name: 'x', age: 0 });
  t.same(ageOf(200).user_profile, { name: 'x', age: 200 });
  t.same(ageOf('42').user_profile, { name: 'x', age: 42 });
  t.same(ageOf(null).user_profile, { name: 'x', age: null });
  t.same(ageOf(null).adjustments, []);
});

t.test('over-long texts are truncated, each kind reported once', async (t) => {
  const long = (n: number) => '长'.repeat(n);
  const data = decodedStart({
    response_count: 2,
    scenario_description: long(LIMITS.scenarioChars + 10),
    history_messages: [
      { message_id: 'i'.repeat(500), sender: long(300), content: long(LIMITS.messageChars + 1) },
      { message_id: 'ok', sender: 'ok', content: long(LIMITS.messageChars + 1) },
    ],
    user_profile: { name: long(1000), gender: 'g'.repeat(100), taboos: [long(LIMITS.profileItemChars + 1), 'short'] },
  });
  t.equal(data.scenario_description!.length, LIMITS.scenarioChars);
  t.equal(data.history_messages[0]!.message_id.length, LIMITS.messageIdChars);
  t.equal(data.history_messages[0]!.sender.length, LIMITS.senderChars);
  t.equal(data.history_messages[0]!.content.length, LIMITS.messageChars);
  t.equal(data.history_messages[1]!.content.length, LIMITS.messageChars);
  t.equal(data.user_profile!.name!.length, LIMITS.senderChars);
  t.equal(data.user_profile!.gender!.length, LIMITS.genderChars);
  t.same(data.user_profile!.taboos, [long(LIMITS.profileItemChars), 'short']);
  t.match(data.adjustments, [
    /^scenario_description: 20010 chars, truncated to 20000$/,
    /^history_messages: 1 message_id\(s\) truncated/,
    /^history_messages: 1 sender\(s\) truncated/,
    /^history_messages: 2 content\(s\) truncated/,
    /^user_profile\.name: /,
    /^user_profile\.gender: /,
    /^user_profile\.taboos: 1 item\(s\) truncated/,
  ]);
});

t.test('truncation never splits a surrogate pair', async (t) => {
  const emoji = '😀'; // two UTF-16 units
  const text = 'a' + emoji.repeat(LIMITS.scenarioChars); // the limit falls inside a pair
  const data = decodedStart({ response_count: 1, scenario_description: text });
  t.equal(data.scenario_description!.length, LIMITS.scenarioChars - 1);
  t.equal(Buffer.from(data.scenario_description!, 'utf8').toString('utf8'), data.scenario_description, 'no lone surrogate (it would not survive UTF-8)');
});

t.test('wrong types in optional fields are dropped, not refused; unknown profile fields are never kept', async (t) => {
  const data = decodedStart({
    response_count: 4,
    scenario_description: 42,
    history_messages: [{ message_id: 'a', sender: 'b' }, 'text', null, { message_id: 1, sender: 'b', content: 'c' }, { message_id: 'k', sender: 'b', content: 'kept' }],
    user_profile: { name: 7, relations: 'friend', taboos: [1, 'x', null], common_topics: Array.from({ length: 150 }, (_, i) => `t${i}`), nickname: 'n', nested: { a: [[[1]]] } },
    target_profile: 'a string',
  });
  t.same(data, {
    response_count: 4,
    scenario_description: null,
    history_messages: [{ message_id: 'k', sender: 'b', content: 'kept' }],
    user_profile: { name: null, relations: null, taboos: ['x'], common_topics: Array.from({ length: 100 }, (_, i) => `t${i}`) },
    target_profile: null,
    adjustments: [
      'scenario_description: a number instead of a string, dropped',
      'history_messages: 4 message(s) without string message_id, sender and content, dropped',
      'user_profile.name: a number instead of a string, dropped',
      'user_profile.relations: a string instead of a list of strings, dropped',
      'user_profile.taboos: 2 item(s) that are not strings dropped',
      'user_profile.common_topics: 150 items, the last 50 dropped',
      'user_profile: unknown field(s) "nickname", "nested" dropped',
      'target_profile: a string instead of an object, dropped',
    ],
  });
  t.same(decodedStart({ response_count: 1, history_messages: 'not a list' }).history_messages, []);
});

t.test('only response_count can make conversation_start fail', async (t) => {
  t.match(decodeClientEvent(frame('conversation_start', {})), { ok: false, error: { code: 'MISSING_REQUIRED_FIELD' } });
  t.match(decodeClientEvent(frame('conversation_start', { response_count: '3' })), { ok: false, error: { code: 'INVALID_EVENT_DATA' } });
  t.match(decodeClientEvent(frame('conversation_start', { response_count: 6 })), { ok: false, error: { code: 'INVALID_EVENT_DATA' } });
  t.match(decodeClientEvent('{"type":"conversation_start"'), { ok: false, error: { code: 'INVALID_EVENT_DATA' } });
  t.match(decodeClientEvent(frame('conversation_start', 'x')), { ok: false, error: { code: 'INVALID_EVENT_DATA' } });
});

t.test('error details name at most 10 problems, however many there are', async (t) => {
  const ids = Array.from({ length: 1_000 }, () => 'x'.repeat(LIMITS.sessionIdChars + 1));
  const result = decodeClientEvent(frame('manual_generate', { session_id: 's', focused_message_ids: ids }));
  t.match(result, { ok: false, error: { code: 'INVALID_EVENT_DATA' } });
  if (!result.ok) {
    const details = result.error.details!;
    t.equal(details.split('; ').length, 11);
    t.match(details, /^data\.focused_message_ids\.0: .*; and 990 more$/);
    t.ok(details.length < 1_000, `${details.length} chars`);
  }
});

t.test("a profile keeps the client's key order", async (t) => {
  const data = decodedStart({ response_count: 1, user_profile: { taboos: ['a'], zeta: 1, name: 'n', age: 3, common_topics: [] } });
  t.same(Object.keys(data.user_profile!), ['taboos', 'name', 'age', 'common_topics']);
});
