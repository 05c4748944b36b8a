// Issue 5 through the whole path: a real WebSocket client -> voxgate (in this process) -> undici ->
// the fake OpenRouter on 127.0.0.1. What the fake received, what the client saw, and in which order.
import { once } from 'node:events';
import t, { type Test } from 'tap';
import { FakeOpenRouter, type FakeOpenRouterOptions, type FakeRequestRecord } from '../kit/fake-openrouter.js';
import { startTestServer, type TestServer } from '../kit/start-server.js';
import { TestClient, type ServerEventJson } from '../kit/ws-client.js';

const TENDENCIES = ['合作', '对抗', '中立', '探索', '安抚'];
const MOODS = ['积极', '消极', '平静', '好奇', '困惑'];
const TONES = ['正式', '随意', '坚定', '委婉', '幽默'];

const CONVERSATION = {
  response_count: 3,
  scenario_description: '在医院挂号处',
  history_messages: [
    { message_id: 'h1', sender: '小林', content: '上周我来过一次' },
    { message_id: 'h2', sender: '王护士', content: '您上次看的是哪位医生？' },
  ],
  user_profile: { name: '小林', age: 34, gender: 'male', personalities: ['耐心'], taboos: ['谈论体重'] },
  target_profile: { name: '王护士', gender: 'female', relations: ['护士'], common_topics: ['预约'] },
};

interface Setup {
  fake: FakeOpenRouter;
  server: TestServer;
  client: TestClient;
}

/** A fake OpenRouter, a voxgate using the real engine against it, and one connected client. */
async function setup(t: Test, fakeOptions: FakeOpenRouterOptions = {}, env: Record<string, string> = {}): Promise<Setup> {
  const fake = await FakeOpenRouter.start({ tokenIntervalMs: 1, ...fakeOptions });
  t.teardown(() => fake.close());
  const server = await startTestServer({
    OPENROUTER_API_KEY: 'sk-e2e-key',
    OPENROUTER_BASE_URL: fake.baseUrl,
    OPENROUTER_MODEL: 'test/primary',
    OPENROUTER_FALLBACK_MODELS: 'test/fallback-a,test/fallback-b',
    OPENROUTER_REFERER: 'https://voxgate.example',
    OPENROUTER_TITLE: 'voxgate-e2e',
    // Far beyond what a loaded machine needs: only the tests about timeouts (which set their own) hit one.
    OPENROUTER_IDLE_TIMEOUT_MS: '10000',
    OPENROUTER_TIMEOUT_MS: '60000',
    AUTO_SUGGEST: 'false',
    ...env,
  });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  t.teardown(() => client.close());
  return { fake, server, client };
}

const ofRequest = (events: ServerEventJson[], requestId: string) => events.filter((e) => e.data.request_id === requestId);

/** Concatenated deltas per suggestion index. */
function deltaTexts(events: ServerEventJson[], requestId: string): string[] {
  const texts: string[] = [];
  for (const event of ofRequest(events, requestId)) {
    if (event.type !== 'llm_response_delta') continue;
    const index = event.data.index as number;
    texts[index] = (texts[index] ?? '') + (event.data.delta as string);
  }
  return texts;
}

/**
 * Waits for the generation's outcome: its llm_response, or its error and nothing else (an empty
 * llm_response would erase the suggestions on the app's screen). The error's details name the request.
 */
async function outcome(client: TestClient): Promise<{ error: ServerEventJson | null; response: ServerEventJson | null; requestId: string }> {
  const first = await client.waitFor((e) => e.type === 'error' || e.type === 'llm_response', undefined, 'error or llm_response');
  if (first.type === 'llm_response') return { error: null, response: first, requestId: first.data.request_id as string };
  const requestId = /request_id: ([0-9a-f-]{36})/.exec(first.data.details as string)?.[1] ?? '';
  await roundTrip(client, first.data.session_id as string);
  const late = client.received.filter((e) => e.type === 'llm_response' && e.data.request_id === requestId);
  if (late.length > 0) throw new Error(`an llm_response followed the error of request ${requestId}`);
  return { error: first, response: null, requestId };
}

/** A round trip: every event the server sent before this is now in `client.received`. */
async function roundTrip(client: TestClient, sessionId: string): Promise<void> {
  client.send('get_message_history', { session_id: sessionId });
  await client.next('message_history_response');
}

t.test('the prompt carries history, profiles, session messages, focus, user_corpus and modifications; headers and schema are sent', async (t) => {
  const { fake, client } = await setup(t);
  const sessionId = await client.startConversation(CONVERSATION);
  // A session message from each side: a chosen reply (user) and a recording (the other person, mock STT).
  client.send('user_selected_response', { session_id: sessionId, selected_content: '我想挂内科', sender: '小林' });
  await client.next('opinion_prediction_response');
  client.send('message_start', { session_id: sessionId, sender: '王护士' });
  client.send('audio_stream', { session_id: sessionId, audio_chunk: Buffer.alloc(16_000).toString('base64') });
  client.send('message_end', { session_id: sessionId });
  const recorded = await client.next('message_recorded');
  client.send('user_modification', { session_id: sessionId, modification: '更礼貌一些' });
  await client.next('llm_response');
  client.send('user_modification', { session_id: sessionId, modification: 'shorter' });
  await client.next('llm_response');
  client.send('manual_generate', {
    session_id: sessionId,
    focused_message_ids: ['h2', recorded.data.message_id],
    user_corpus: '问问有没有别的医生',
  });
  const response = await client.next('llm_response');

  const record = fake.requests.at(-1) as FakeRequestRecord;
  t.equal(record.kind, 'suggestions');
  t.equal(record.headers['x-request-id'], response.data.request_id, 'the protocol request id travels upstream');
  t.equal(record.url, '/api/v1/chat/completions');
  t.equal(record.headers.authorization, 'Bearer sk-e2e-key');
  t.equal(record.headers['http-referer'], 'https://voxgate.example');
  t.equal(record.headers['x-title'], 'voxgate-e2e');
  t.match(record.body, {
    model: 'test/primary',
    models: ['test/primary', 'test/fallback-a', 'test/fallback-b'],
    stream: true,
    stream_options: { include_usage: true },
    response_format: {
      type: 'json_schema',
      json_schema: {
        name: 'reply_suggestions',
        schema: { properties: { suggestions: { type: 'array', items: { type: 'string' }, minItems: 3, maxItems: 3 } } },
      },
    },
  });

  const messages = record.body.messages ?? [];
  t.equal(messages[0]?.role, 'system');
  const prompt = messages.filter((m) => m.role === 'user').map((m) => m.content).join('\n');
  const section = (heading: string): string => {
    const start = prompt.indexOf(heading);
    t.ok(start >= 0, `prompt has section ${heading}`);
    const end = prompt.indexOf('\n## ', start + heading.length);
    return prompt.slice(start, end < 0 ? undefined : end);
  };
  t.match(section('## 场景'), '在医院挂号处');
  const userProfile = section('## 用户资料');
  for (const line of ['name: 小林', 'age: 34', 'personalities: 耐心', 'taboos: 谈论体重']) t.match(userProfile, line, `user profile: ${line}`);
  const targetProfile = section('## 对方资料');
  for (const line of ['name: 王护士', 'relations: 护士', 'common_topics: 预约']) t.match(targetProfile, line, `target profile: ${line}`);
  const history = section('## 之前的对话记录');
  t.match(history, '小林: 上周我来过一次', 'history messages as sender: content');
  t.match(history, '王护士: 您上次看的是哪位医生？');
  const session = section('## 本次对话');
  t.match(session, '小林: 我想挂内科', 'the chosen reply as a session message');
  t.match(session, `王护士: ${recorded.data.message_content as string}`, 'the recording as a session message');
  t.ok(session.indexOf('小林: 我想挂内科') < session.indexOf('王护士: [mock'), 'session messages in order');
  const focused = section('## 用户关注的消息');
  t.match(focused, '王护士: 您上次看的是哪位医生？', 'a focused history message');
  t.match(focused, `王护士: ${recorded.data.message_content as string}`, 'a focused session message');
  t.notMatch(focused, '上周我来过一次', 'unfocused messages stay out of the focus section');
  t.match(section('## 用户想表达的意思'), '问问有没有别的医生', 'user_corpus is the user intent');
  const modifications = section('## 修改要求');
  t.match(modifications, '1. 更礼貌一些');
  t.match(modifications, '2. shorter');
});

t.test('deltas come before llm_response and add up to exactly response_count suggestions', async (t) => {
  const { fake, client } = await setup(t);
  for (const count of [1, 3, 5]) {
    const sessionId = await client.startConversation({ ...CONVERSATION, response_count: count });
    client.send('manual_generate', { session_id: sessionId });
    const response = await client.next('llm_response');
    const requestId = response.data.request_id as string;
    const events = ofRequest(client.received, requestId);
    t.equal(events.at(-1), response, 'llm_response is the last event of the request');
    t.ok(events.filter((e) => e.type === 'llm_response_delta').length >= count, `${count}: deltas before llm_response`);
    t.equal(response.data.suggestions.length, count, `${count}: exactly response_count suggestions`);
    t.same(deltaTexts(client.received, requestId), response.data.suggestions, `${count}: deltas per index = final suggestions`);
    t.equal(fake.requests.at(-1)?.completed, true);
  }
});

t.test('with a slow model the first suggestion reaches the client before the later ones are written', async (t) => {
  const tokenChars = 2;
  const { fake, client } = await setup(t, { tokenIntervalMs: 25, tokenChars });
  const sessionId = await client.startConversation(CONVERSATION);
  // Snapshot the fake's write log at the moment each delta is received (same process).
  const seen: Array<{ event: ServerEventJson; tokensSent: number; completed: boolean }> = [];
  client.socket.on('message', (data) => {
    const record = fake.requests.at(-1);
    seen.push({
      event: JSON.parse(data.toString()) as ServerEventJson,
      tokensSent: record?.tokensSent ?? -1,
      completed: record?.completed ?? false,
    });
  });
  client.send('manual_generate', { session_id: sessionId });
  const response = await client.next('llm_response');
  const suggestions = response.data.suggestions as string[];
  t.equal(suggestions.length, 3);

  // The first moment the client holds the whole first suggestion.
  let text = '';
  const firstDone = seen.find(({ event }) => {
    if (event.type !== 'llm_response_delta' || event.data.index !== 0) return false;
    text += event.data.delta as string;
    return text === suggestions[0];
  });
  t.ok(firstDone, 'suggestion 0 is complete from its deltas alone');
  // Where the fake's content (the JSON it tokenized) ends suggestion 1, in tokens.
  const content = JSON.stringify({ suggestions });
  const endOfSecond = content.indexOf(JSON.stringify(suggestions[1])) + JSON.stringify(suggestions[1]).length;
  const tokensThroughSecond = Math.ceil(Array.from(content.slice(0, endOfSecond)).length / tokenChars);
  const record = fake.requests.at(-1) as FakeRequestRecord;
  t.equal(firstDone?.completed, false, 'the fake was still streaming');
  t.ok((firstDone?.tokensSent ?? Infinity) < tokensThroughSecond,
    `first suggestion complete after ${firstDone?.tokensSent} tokens; suggestion 2 ends at token ${tokensThroughSecond} of ${record.tokensSent}`);
  // Order, not milliseconds: the last suggestion's deltas reached the client after the first was whole.
  const laterDeltas = seen.slice(firstDone === undefined ? seen.length : seen.indexOf(firstDone) + 1);
  t.ok(laterDeltas.some(({ event }) => event.type === 'llm_response_delta' && event.data.index === 2), 'the third suggestion streamed after the first was complete');
});

t.test('401: LLM_SERVICE_ERROR with the upstream status and the request id, no llm_response, no retry', async (t) => {
  const { fake, client } = await setup(t);
  const sessionId = await client.startConversation(CONVERSATION);
  fake.enqueue({ kind: 'status', status: 401, code: 401, message: 'No auth credentials found' });
  client.send('manual_generate', { session_id: sessionId });
  const { error, response, requestId } = await outcome(client);
  t.match(error?.data, { session_id: sessionId, error_code: 'LLM_SERVICE_ERROR', details: /^request_id: [0-9a-f-]{36}; .*\(status=401 code=401\)$/ });
  t.equal(response, null, 'the error only: nothing invented, nothing erased');
  t.same(ofRequest(client.received, requestId).filter((e) => e.type === 'llm_response_delta'), []);
  t.equal(fake.requests.length, 1, 'not retried');
});

t.test('502 then success: retried, the client sees only the suggestions', async (t) => {
  const { fake, client } = await setup(t);
  const sessionId = await client.startConversation(CONVERSATION);
  fake.enqueue({ kind: 'status', status: 502, message: 'Bad gateway' });
  client.send('manual_generate', { session_id: sessionId });
  const { error, response } = await outcome(client);
  t.equal(error, null, 'no error event');
  t.equal(response?.data.suggestions.length, 3);
  t.equal(fake.requests.length, 2, 'one retry');
  t.equal(fake.requests[1]?.headers['x-request-id'], response?.data.request_id, 'same protocol request');
});

t.test('429 with Retry-After: 1 then success: the wait is honoured', async (t) => {
  const { fake, client } = await setup(t);
  const sessionId = await client.startConversation(CONVERSATION);
  fake.enqueue({ kind: 'status', status: 429, code: 429, message: 'Rate limit exceeded', retryAfter: '1' });
  client.send('manual_generate', { session_id: sessionId });
  const { error, response } = await outcome(client);
  t.equal(error, null);
  t.equal(response?.data.suggestions.length, 3);
  t.equal(fake.requests.length, 2);
  const waitedMs = (fake.requests[1]?.receivedAt ?? 0) - (fake.requests[0]?.receivedAt ?? 0);
  // A timer never fires early, so this lower bound holds on any machine (an upper one would not).
  t.ok(waitedMs >= 990, `retried after ${Math.round(waitedMs)} ms`);
});

t.test('an error chunk after tokens: the error only, exactly one upstream request', async (t) => {
  const { fake, client } = await setup(t);
  const sessionId = await client.startConversation(CONVERSATION);
  // 502 would be retried before the first token; after it, never.
  fake.enqueue({ kind: 'stream', tokenIntervalMs: 5, interrupt: { tokens: 12, then: 'error-chunk', code: 502 } });
  client.send('manual_generate', { session_id: sessionId });
  const { error, response, requestId } = await outcome(client);
  t.ok(deltaTexts(client.received, requestId).join('').length > 0, 'some text was streamed before the error');
  t.match(error?.data, { error_code: 'LLM_SERVICE_ERROR', details: 'stream error, code=502' });
  t.equal(response, null, 'the partial text is not passed off as suggestions');
  t.equal(fake.requests.length, 1, 'no silent retry');
});

t.test('finish_reason "error": LLM_SERVICE_ERROR and no llm_response', async (t) => {
  const { fake, client } = await setup(t);
  const sessionId = await client.startConversation(CONVERSATION);
  fake.enqueue({ kind: 'stream', interrupt: { tokens: 6, then: 'finish-error' } });
  client.send('manual_generate', { session_id: sessionId });
  const { error, response } = await outcome(client);
  t.match(error?.data, { error_code: 'LLM_SERVICE_ERROR', details: 'finish_reason=error' });
  t.equal(response, null);
  t.equal(fake.requests.length, 1);
});

t.test('a stall longer than OPENROUTER_IDLE_TIMEOUT_MS: SERVICE_TIMEOUT, upstream closed', async (t) => {
  const { fake, client } = await setup(t, {}, { OPENROUTER_IDLE_TIMEOUT_MS: '500' });
  const sessionId = await client.startConversation(CONVERSATION);
  fake.enqueue({ kind: 'stream', interrupt: { tokens: 8, then: 'stall' } });
  const aborted = once(fake.events, 'client-abort');
  client.send('manual_generate', { session_id: sessionId });
  const { error, response } = await outcome(client);
  // The details name the timer that fired: the idle one, not the 60 s deadline.
  t.match(error?.data, { error_code: 'SERVICE_TIMEOUT', details: 'idle > 500 ms' });
  t.equal(response, null);
  const [record] = (await aborted) as [FakeRequestRecord];
  t.equal(record.clientAborted, true, 'the stalled request was closed');
  t.equal(fake.requests.length, 1, 'a stall is not retried');
});

t.test('malformed model output: LLM_SERVICE_ERROR, nothing invented', async (t) => {
  const { fake, client } = await setup(t);
  const sessionId = await client.startConversation(CONVERSATION);
  for (const content of ['Sure! Here are three replies: 1. 好的', '{"suggestions": ["好的", 42]}', '{"suggestions": ["好的", "没问题']) {
    fake.enqueue({ kind: 'stream', content });
    client.send('manual_generate', { session_id: sessionId });
    const { error, response } = await outcome(client);
    t.match(error?.data, { error_code: 'LLM_SERVICE_ERROR' }, `${content}: LLM_SERVICE_ERROR`);
    t.equal(response, null, `${content}: no llm_response`);
  }
});

t.test('fewer suggestions than asked are returned as they are', async (t) => {
  const { fake, client } = await setup(t);
  const sessionId = await client.startConversation({ ...CONVERSATION, response_count: 4 });
  fake.enqueue({ kind: 'stream', suggestions: ['明天上午可以吗？', '有没有别的医生？'] });
  client.send('manual_generate', { session_id: sessionId });
  const { error, response } = await outcome(client);
  t.equal(error, null);
  t.same(response?.data.suggestions, ['明天上午可以吗？', '有没有别的医生？']);
  t.same(deltaTexts(client.received, response?.data.request_id as string), response?.data.suggestions);
});

t.test('prediction: allowed values pass; an answer outside the lists is an error and nothing else', async (t) => {
  const { fake, client } = await setup(t);
  const sessionId = await client.startConversation(CONVERSATION);
  fake.enqueue({ kind: 'stream', prediction: { tendency: '安抚', mood: '好奇', tone: '委婉' } });
  client.send('user_selected_response', { session_id: sessionId, selected_content: '我想挂内科', sender: '小林' });
  const prediction = await client.next('opinion_prediction_response');
  t.same(prediction.data.prediction, { tendency: '安抚', mood: '好奇', tone: '委婉' });
  t.ok(TENDENCIES.includes(prediction.data.prediction.tendency) && MOODS.includes(prediction.data.prediction.mood)
    && TONES.includes(prediction.data.prediction.tone), 'from the allowed lists');
  t.equal(fake.requests.at(-1)?.kind, 'prediction');
  t.equal(fake.requests.at(-1)?.body.response_format?.json_schema?.name, 'opinion_prediction');

  fake.enqueue({ kind: 'stream', prediction: { tendency: '愤怒', mood: '好奇', tone: '委婉' } });
  const cutoff = client.received.length;
  client.send('user_selected_response', { session_id: sessionId, selected_content: '那明天上午吧', sender: '小林' });
  const error = await client.next('error');
  t.match(error.data, { session_id: sessionId, error_code: 'LLM_SERVICE_ERROR', details: /prediction\.tendency/ });
  await roundTrip(client, sessionId);
  t.same(client.received.slice(cutoff).filter((e) => e.type === 'opinion_prediction_response'), [], 'no guessed prediction');
});

t.test('manual_generate during a generation aborts the first upstream request; only the second is delivered', async (t) => {
  const { fake, client } = await setup(t);
  const sessionId = await client.startConversation(CONVERSATION);
  // The first stream stalls after a few tokens: it cannot finish before the second request arrives.
  fake.enqueue({ kind: 'stream', interrupt: { tokens: 8, then: 'stall' } });
  client.send('manual_generate', { session_id: sessionId });
  const firstDelta = await client.next('llm_response_delta');
  const firstId = firstDelta.data.request_id as string;
  const aborted = once(fake.events, 'client-abort');
  fake.enqueue({ kind: 'stream', tokenIntervalMs: 1 });
  client.send('manual_generate', { session_id: sessionId });
  const [abortedRecord] = (await aborted) as [FakeRequestRecord];
  t.equal(abortedRecord.headers['x-request-id'], firstId, 'the first request was closed by voxgate');
  t.equal(abortedRecord.completed, false);
  const response = await client.next('llm_response');
  t.not(response.data.request_id, firstId);
  t.equal(fake.requests[1]?.headers['x-request-id'], response.data.request_id);
  await roundTrip(client, sessionId);
  t.equal(client.received.filter((e) => e.type === 'llm_response').length, 1, 'exactly one llm_response');
  const lateDeltas = client.received.slice(client.received.indexOf(response)).filter((e) => e.data.request_id === firstId);
  t.same(lateDeltas, [], 'nothing of the first request after the second one finished');
});

for (const [name, cancel] of [
  ['message_start', (client: TestClient, sessionId: string) => client.send('message_start', { session_id: sessionId, sender: '王护士' })],
  ['conversation_end', (client: TestClient, sessionId: string) => client.send('conversation_end', { session_id: sessionId })],
] as const) {
  t.test(`${name} during a generation aborts the upstream request and nothing of it is delivered`, async (t) => {
    const { fake, client } = await setup(t);
    const sessionId = await client.startConversation(CONVERSATION);
    // The stream stalls after a few tokens: it cannot finish before the cancel arrives.
    fake.enqueue({ kind: 'stream', interrupt: { tokens: 8, then: 'stall' } });
    client.send('manual_generate', { session_id: sessionId });
    const requestId = (await client.next('llm_response_delta')).data.request_id as string;
    const aborted = once(fake.events, 'client-abort');
    cancel(client, sessionId);
    const [record] = (await aborted) as [FakeRequestRecord];
    t.equal(record.headers['x-request-id'], requestId);
    // A fresh session proves the connection has caught up with everything the server sent.
    const probe = await client.startConversation(CONVERSATION);
    t.ok(probe);
    t.notOk(client.received.some((e) => e.type === 'llm_response' && e.data.request_id === requestId), 'no llm_response');
    t.notOk(client.received.some((e) => e.type === 'error'), 'no error either: a cancelled request sends nothing');
    t.equal(fake.requests.length, 1, 'not restarted');
  });
}

t.test('closing the last connection during a generation aborts the upstream request', async (t) => {
  const { fake, client } = await setup(t);
  const sessionId = await client.startConversation(CONVERSATION);
  // The stream stalls after a few tokens: it cannot finish before the connection closes.
  fake.enqueue({ kind: 'stream', interrupt: { tokens: 8, then: 'stall' } });
  client.send('manual_generate', { session_id: sessionId });
  const requestId = (await client.next('llm_response_delta')).data.request_id as string;
  const aborted = once(fake.events, 'client-abort');
  await client.close();
  const [record] = (await aborted) as [FakeRequestRecord];
  t.equal(record.headers['x-request-id'], requestId);
  t.equal(record.completed, false);
});
