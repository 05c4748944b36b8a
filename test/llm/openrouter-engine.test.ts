import { once } from 'node:events';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { SlowConsumerError } from '../../src/errors.js';
import type { DialogueContext, SuggestionRequest } from '../../src/llm/engine.js';
import { OpenRouterEngine, type OpenRouterEngineOptions } from '../../src/llm/openrouter/engine.js';
import { FakeOpenRouter, type FakeOpenRouterOptions, type FakeRequestRecord } from '../kit/fake-openrouter.js';
import { RecordingSink } from './recording-sink.js';

const silent = pino({ level: 'silent' });

const CONTEXT: DialogueContext = {
  scenarioDescription: '在医院挂号处',
  userProfile: {
    name: '小林', age: 34, gender: 'male', relations: ['患者'], personalities: ['耐心'],
    preferences: ['简短的回答'], taboos: ['谈论体重'], common_topics: [],
  },
  targetProfile: {
    name: '王护士', age: null, gender: 'female', relations: ['护士'], personalities: [],
    preferences: [], taboos: [], common_topics: ['预约'],
  },
  historyMessages: [{ messageId: 'h1', sender: '小林', content: '上周我来过一次' }],
  sessionMessages: [
    { messageId: 'msg_001', sender: '王护士', content: '请问您挂哪个科？' },
    { messageId: 'usr_002', sender: '小林', content: '我想挂内科' },
    { messageId: 'msg_003', sender: '王护士', content: '内科今天下午满了，明天可以吗？' },
  ],
  focusedMessages: [{ messageId: 'msg_003', sender: '王护士', content: '内科今天下午满了，明天可以吗？' }],
  userIntent: '问问有没有别的医生',
  modifications: ['更礼貌一些', 'shorter'],
};

function request(count = 3, requestId = 'req-1'): SuggestionRequest {
  return { requestId, sessionId: 'sess-1', count, context: CONTEXT };
}

async function setup(t: Test, fakeOptions: FakeOpenRouterOptions = {}, engineOptions: Partial<OpenRouterEngineOptions> = {}) {
  const fake = await FakeOpenRouter.start(fakeOptions);
  t.teardown(() => fake.close());
  const engine = new OpenRouterEngine({
    baseUrl: fake.baseUrl,
    apiKey: 'sk-test',
    model: 'test/primary',
    fallbackModels: ['test/fallback'],
    temperature: 0.6,
    maxTokens: 400,
    // Far beyond what a loaded machine needs, so only the tests about timeouts (which set their own) hit one.
    requestTimeoutMs: 60_000,
    idleTimeoutMs: 10_000,
    maxRetries: 2,
    retryBaseDelayMs: 20,
    maxInFlight: 4,
    maxQueue: 4,
    referer: 'https://voxgate.example',
    title: 'voxgate',
    logger: silent,
    ...engineOptions,
  });
  t.teardown(() => engine.close());
  return { fake, engine };
}

const never = (): AbortSignal => new AbortController().signal;

t.test('streams deltas whose concatenation equals the final suggestions', async (t) => {
  const { fake, engine } = await setup(t);
  const sink = new RecordingSink();
  const suggestions = await engine.generateSuggestions(request(3), sink, never());
  t.equal(suggestions.length, 3);
  t.equal(new Set(suggestions).size, 3);
  t.same(sink.texts(), suggestions);
  t.ok(sink.writes.length > 3, 'more than one delta per suggestion');
  t.match(suggestions[0], /内科今天下午满了/, 'the fake echoes the last message');
  t.equal(fake.requests.length, 1);
  t.ok(fake.requests[0]?.completed);
});

t.test('sends the headers, streaming flags, fallbacks and the JSON schema', async (t) => {
  const { fake, engine } = await setup(t);
  await engine.generateSuggestions(request(4, 'req-headers'), new RecordingSink(), never());
  const record = fake.requests[0] as FakeRequestRecord;
  t.equal(record.url, '/api/v1/chat/completions');
  t.equal(record.headers.authorization, 'Bearer sk-test');
  t.equal(record.headers['http-referer'], 'https://voxgate.example');
  t.equal(record.headers['x-title'], 'voxgate');
  t.equal(record.headers['x-request-id'], 'req-headers');
  t.match(record.body, {
    model: 'test/primary',
    models: ['test/primary', 'test/fallback'],
    stream: true,
    stream_options: { include_usage: true },
    temperature: 0.6,
    max_tokens: 400,
    response_format: {
      type: 'json_schema',
      json_schema: {
        name: 'reply_suggestions',
        schema: { properties: { suggestions: { type: 'array', items: { type: 'string' }, minItems: 4, maxItems: 4 } } },
      },
    },
  });
});

t.test('the prompt carries scenario, profiles, history, session, focus, intent and modifications', async (t) => {
  const { fake, engine } = await setup(t);
  await engine.generateSuggestions(request(2), new RecordingSink(), never());
  const messages = fake.requests[0]?.body.messages ?? [];
  t.equal(messages[0]?.role, 'system');
  t.match(messages[0]?.content, /2 条/);
  const prompt = messages[1]?.content ?? '';
  for (const expected of [
    '在医院挂号处', 'name: 小林', 'age: 34', 'taboos: 谈论体重', 'name: 王护士', 'common_topics: 预约',
    '小林: 上周我来过一次', '王护士: 请问您挂哪个科？', '小林: 我想挂内科', '问问有没有别的医生',
    '1. 更礼貌一些', '2. shorter',
  ]) {
    t.ok(prompt.includes(expected), `prompt has ${expected}`);
  }
  const focusSection = prompt.slice(prompt.indexOf('## 用户关注的消息'));
  t.ok(focusSection.includes('王护士: 内科今天下午满了，明天可以吗？'), 'focused message in its own section');
});

t.test('delivers the first suggestion before the model has written the later ones', async (t) => {
  const { fake, engine } = await setup(t, { tokenIntervalMs: 15, tokenChars: 2 });
  const sink = new RecordingSink();
  const firstSuggestionDone = once(sink.events, 'write').then(() => ({
    tokensSent: fake.requests[0]?.tokensSent ?? 0,
    completed: fake.requests[0]?.completed,
  }));
  const pending = engine.generateSuggestions(request(3), sink, never());
  const atFirstDelta = await firstSuggestionDone;
  const suggestions = await pending;
  const totalTokens = fake.requests[0]?.tokensSent ?? 0;
  t.equal(atFirstDelta.completed, false, 'the response was still streaming');
  t.ok(atFirstDelta.tokensSent < totalTokens / 3, `first delta after ${atFirstDelta.tokensSent} of ${totalTokens} tokens`);
  t.equal(suggestions.length, 3);
});

t.test('honours Retry-After on 429, then succeeds', async (t) => {
  const { fake, engine } = await setup(t);
  fake.enqueue({ kind: 'status', status: 429, retryAfter: '1', code: 429, message: 'Rate limit exceeded' });
  const suggestions = await engine.generateSuggestions(request(2), new RecordingSink(), never());
  t.equal(suggestions.length, 2);
  t.equal(fake.requests.length, 2);
  const waitedMs = (fake.requests[1]?.receivedAt ?? 0) - (fake.requests[0]?.receivedAt ?? 0);
  t.ok(waitedMs >= 990, `waited ${Math.round(waitedMs)} ms`);
});

t.test('retries 502 and an early error chunk with backoff', async (t) => {
  const { fake, engine } = await setup(t);
  fake.enqueue(
    { kind: 'status', status: 502, message: 'Bad gateway' },
    { kind: 'stream', interrupt: { tokens: 0, then: 'error-chunk', code: 503 } },
  );
  const suggestions = await engine.generateSuggestions(request(2), new RecordingSink(), never());
  t.equal(suggestions.length, 2);
  t.equal(fake.requests.length, 3);
});

t.test('fails at once on 401 with the upstream status and code in details', async (t) => {
  const { fake, engine } = await setup(t);
  fake.enqueue({ kind: 'status', status: 401, code: 'invalid_api_key', message: 'No auth credentials found' });
  await t.rejects(engine.generateSuggestions(request(), new RecordingSink(), never()), {
    code: 'LLM_SERVICE_ERROR',
    retryable: false,
    details: 'status=401 code=invalid_api_key',
  });
  t.equal(fake.requests.length, 1);
});

t.test('gives up after maxRetries', async (t) => {
  const { fake, engine } = await setup(t, {}, { maxRetries: 1 });
  fake.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 503 }, { kind: 'status', status: 503 });
  await t.rejects(engine.generateSuggestions(request(), new RecordingSink(), never()), {
    code: 'LLM_SERVICE_ERROR',
    details: 'status=503 code=503',
  });
  t.equal(fake.requests.length, 2);
});

t.test('a mid-stream error after tokens fails without a retry', async (t) => {
  const { fake, engine } = await setup(t);
  fake.enqueue({ kind: 'stream', interrupt: { tokens: 12, then: 'error-chunk', code: 502 } });
  const sink = new RecordingSink();
  await t.rejects(engine.generateSuggestions(request(), sink, never()), {
    code: 'LLM_SERVICE_ERROR',
    details: 'stream error, code=502',
  });
  t.ok(sink.writes.length > 0, 'deltas had reached the sink');
  t.equal(fake.requests.length, 1);
});

t.test('a connection lost before the first token is retried, after it is not', async (t) => {
  const { fake, engine } = await setup(t);
  fake.enqueue(
    { kind: 'stream', interrupt: { tokens: 0, then: 'hang-up' } },
    { kind: 'stream', interrupt: { tokens: 12, then: 'hang-up' } },
  );
  const sink = new RecordingSink();
  await t.rejects(engine.generateSuggestions(request(), sink, never()), {
    code: 'LLM_SERVICE_ERROR',
    retryable: false,
    message: 'connection to openrouter failed',
  });
  t.ok(sink.writes.length > 0);
  t.equal(fake.requests.length, 2);
});

t.test('finish_reason "error" fails the request', async (t) => {
  const { fake, engine } = await setup(t);
  fake.enqueue({ kind: 'stream', interrupt: { tokens: 12, then: 'finish-error' } });
  await t.rejects(engine.generateSuggestions(request(), new RecordingSink(), never()), {
    code: 'LLM_SERVICE_ERROR',
    details: 'finish_reason=error',
  });
  t.equal(fake.requests.length, 1);
});

t.test('a stalled stream fails with SERVICE_TIMEOUT and closes the connection', async (t) => {
  const { fake, engine } = await setup(t, {}, { idleTimeoutMs: 300 });
  fake.enqueue({ kind: 'stream', interrupt: { tokens: 8, then: 'stall' } });
  const aborted = once(fake.events, 'client-abort');
  await t.rejects(engine.generateSuggestions(request(), new RecordingSink(), never()), { code: 'SERVICE_TIMEOUT' });
  await aborted;
  t.equal(fake.requests.length, 1);
});

t.test('keep-alive comments count as activity, the whole-request deadline still applies', async (t) => {
  // Keep-alives every 50 ms against a 1.5 s idle timeout: only an event-loop stall of over a second could
  // let the idle timer win, and which timer fired is in the error's details, not in a stopwatch.
  const { fake, engine } = await setup(t, { keepAliveIntervalMs: 50 }, { idleTimeoutMs: 1_500, requestTimeoutMs: 3_000 });
  fake.enqueue({ kind: 'stream', firstTokenDelayMs: 600_000 });
  await t.rejects(engine.generateSuggestions(request(), new RecordingSink(), never()), {
    code: 'SERVICE_TIMEOUT',
    details: '3000 ms',
  });
  t.equal(fake.requests.length, 1);
});

t.test('malformed model output fails with LLM_SERVICE_ERROR', async (t) => {
  const { fake, engine } = await setup(t);
  fake.enqueue(
    { kind: 'stream', content: '{"suggestions": ["好的", 42]}' },
    { kind: 'stream', content: 'Sure! 1. Yes 2. No' },
  );
  await t.rejects(engine.generateSuggestions(request(), new RecordingSink(), never()), { code: 'LLM_SERVICE_ERROR' });
  await t.rejects(engine.generateSuggestions(request(), new RecordingSink(), never()), { code: 'LLM_SERVICE_ERROR' });
  t.equal(fake.requests.length, 2, 'not retried');
});

t.test('fewer suggestions come back as they are; extra ones are trimmed and never streamed', async (t) => {
  const { fake, engine } = await setup(t);
  fake.enqueue(
    { kind: 'stream', suggestions: ['只有一条'] },
    { kind: 'stream', suggestions: ['一', '二', '三', '四'], fence: true },
  );
  t.same(await engine.generateSuggestions(request(3), new RecordingSink(), never()), ['只有一条']);
  const sink = new RecordingSink();
  t.same(await engine.generateSuggestions(request(2), sink, never()), ['一', '二']);
  t.same(sink.texts(), ['一', '二']);
});

t.test('aborting closes the upstream connection at once', async (t) => {
  const { fake, engine } = await setup(t, { firstTokenDelayMs: 5_000, keepAliveIntervalMs: 100 });
  const controller = new AbortController();
  fake.events.once('request', () => controller.abort(new Error('superseded')));
  const aborted = once(fake.events, 'client-abort');
  await t.rejects(engine.generateSuggestions(request(), new RecordingSink(), controller.signal), { message: 'superseded' });
  const [record] = (await aborted) as [FakeRequestRecord];
  t.equal(record.clientAborted, true);
  t.equal(engine.health().inFlight, 0, 'the limiter slot was released');
});

t.test('aborting during a Retry-After wait cancels the backoff', async (t) => {
  const controller = new AbortController();
  // The client logs this line right before it starts waiting: abort exactly then.
  const logger = pino({ level: 'warn' }, {
    write(line: string) {
      if ((JSON.parse(line) as { msg?: string }).msg === 'llm request failed before the first token, retrying') controller.abort(new Error('gone'));
    },
  });
  const { fake, engine } = await setup(t, {}, { logger });
  // 30 s: within the 60 s deadline, so the client does wait (one beyond it fails at once, next test).
  fake.enqueue({ kind: 'status', status: 429, retryAfter: '30' });
  const startedAt = performance.now();
  await t.rejects(engine.generateSuggestions(request(), new RecordingSink(), controller.signal), { message: 'gone' });
  // Waiting out the backoff would take 30 s; no loaded machine needs 15 s to reject an aborted call.
  t.ok(performance.now() - startedAt < 15_000, 'did not wait for the backoff');
  t.equal(fake.requests.length, 1);
});

t.test('a Retry-After beyond the deadline fails with the upstream error instead of waiting', async (t) => {
  const { fake, engine } = await setup(t, {}, { requestTimeoutMs: 1_000 });
  fake.enqueue({ kind: 'status', status: 429, retryAfter: '5' });
  await t.rejects(engine.generateSuggestions(request(), new RecordingSink(), never()), {
    code: 'LLM_SERVICE_ERROR',
    retryable: true,
    retryAfterSeconds: 5,
  });
  t.equal(fake.requests.length, 1);
});

t.test('sink backpressure stops reading until drained, so the server sees its writes block', async (t) => {
  const { fake, engine } = await setup(t);
  fake.enqueue({ kind: 'stream', tokenIntervalMs: 0, interrupt: { tokens: 10, then: 'flood' } });
  const sink = new RecordingSink();
  sink.block();
  let writesWhenPaused = -1;
  sink.events.once('drained-called', () => {
    writesWhenPaused = sink.writes.length;
  });
  const pending = engine.generateSuggestions(request(3), sink, never());
  // The fake reports this only when a write has waited stuckAfterMs for drain: the client stopped reading.
  await once(fake.events, 'write-stuck');
  t.equal(sink.drainedCalls, 1, 'the engine waits on drained()');
  // The deltas of the network chunk being parsed still arrive; nothing is read after it.
  t.equal(sink.writes.length, writesWhenPaused, 'no delta after the engine started waiting');
  t.ok((fake.requests[0]?.bytesWritten ?? 0) > 256 * 1024, `server wrote ${fake.requests[0]?.bytesWritten} bytes before it stuck`);
  sink.release();
  const suggestions = await pending;
  t.equal(suggestions.length, 3);
  t.same(sink.texts(), suggestions);
  t.equal(fake.requests[0]?.completed, true);
});

t.test('a sink that never drains aborts the upstream with SLOW_CONSUMER', async (t) => {
  const { fake, engine } = await setup(t, { tokenIntervalMs: 5 });
  const sink = new RecordingSink();
  sink.block();
  sink.events.once('drained-called', () => sink.fail(new SlowConsumerError('client is not reading')));
  const aborted = once(fake.events, 'client-abort');
  await t.rejects(engine.generateSuggestions(request(), sink, never()), { code: 'SLOW_CONSUMER' });
  await aborted;
  t.equal(fake.requests.length, 1);
});

t.test('more calls than slots plus queue fail with LLM_SERVICE_BUSY', async (t) => {
  const { fake, engine } = await setup(t, { firstTokenDelayMs: 5_000, keepAliveIntervalMs: 100 }, { maxInFlight: 1, maxQueue: 1 });
  const controller = new AbortController();
  const first = engine.generateSuggestions(request(1, 'a'), new RecordingSink(), controller.signal);
  const second = engine.generateSuggestions(request(1, 'b'), new RecordingSink(), controller.signal);
  await once(fake.events, 'request');
  t.match(engine.health(), { inFlight: 1, queued: 1 });
  await t.rejects(engine.generateSuggestions(request(1, 'c'), new RecordingSink(), never()), { code: 'LLM_SERVICE_BUSY' });
  controller.abort(new Error('done'));
  await t.rejects(first, { message: 'done' });
  await t.rejects(second, { message: 'done' });
  t.match(engine.health(), { inFlight: 0, queued: 0 });
  t.equal(fake.requests.length, 1, 'the queued call never reached the upstream');
});

t.test('connection failures are retried, then reported', async (t) => {
  const fake = await FakeOpenRouter.start();
  const baseUrl = fake.baseUrl;
  await fake.close();
  const engine = new OpenRouterEngine({
    baseUrl, apiKey: 'k', model: 'm', fallbackModels: [], temperature: 0, maxTokens: 10, requestTimeoutMs: 5_000,
    idleTimeoutMs: 1_000, maxRetries: 2, retryBaseDelayMs: 10, maxInFlight: 1, maxQueue: 0, referer: null, title: null,
    logger: silent,
  });
  t.teardown(() => engine.close());
  await t.rejects(engine.generateSuggestions(request(), new RecordingSink(), never()), {
    code: 'LLM_SERVICE_ERROR',
    details: 'ECONNREFUSED',
  });
});

t.test('predicts an opinion from the allowed lists and rejects anything else', async (t) => {
  const { fake, engine } = await setup(t);
  fake.enqueue(
    { kind: 'stream', prediction: { tendency: '探索', mood: '好奇', tone: '委婉' }, fence: true },
    { kind: 'stream', prediction: { tendency: 'cooperative', mood: '好奇', tone: '委婉' } },
  );
  const prediction = await engine.predictOpinion(
    { requestId: 'p1', sessionId: 's', context: CONTEXT, selectedContent: '明天上午可以' },
    never(),
  );
  t.same(prediction, { tendency: '探索', mood: '好奇', tone: '委婉' });
  const record = fake.requests[0] as FakeRequestRecord;
  t.equal(record.kind, 'prediction');
  t.match(record.body.messages?.[1]?.content, /明天上午可以/);
  await t.rejects(
    engine.predictOpinion({ requestId: 'p2', sessionId: 's', context: CONTEXT, selectedContent: 'x' }, never()),
    { code: 'LLM_SERVICE_ERROR', details: /prediction\.tendency/ },
  );
});

t.test('health turns degraded after repeated failures and recovers on success', async (t) => {
  const { fake, engine } = await setup(t, {}, { maxRetries: 0 });
  t.match(engine.health(), { engine: 'openrouter', status: 'healthy', model: 'test/primary' });
  for (let i = 0; i < 3; i++) {
    fake.enqueue({ kind: 'status', status: 500 });
    await t.rejects(engine.generateSuggestions(request(), new RecordingSink(), never()));
  }
  t.match(engine.health(), { status: 'degraded', reason: /fake 500/ });
  await engine.generateSuggestions(request(), new RecordingSink(), never());
  t.match(engine.health(), { status: 'healthy', reason: null });
});

t.test('destroy() fails running calls at once and refuses new ones', async (t) => {
  const { fake, engine } = await setup(t, { firstTokenDelayMs: 5_000, keepAliveIntervalMs: 100 });
  const running = engine.generateSuggestions(request(), new RecordingSink(), never());
  const aborted = once(fake.events, 'client-abort');
  await once(fake.events, 'request');
  await engine.destroy();
  await t.rejects(running, { code: 'LLM_SERVICE_ERROR', details: 'UND_ERR_DESTROYED' });
  t.equal(fake.requests.length, 1, 'no retry on a destroyed pool');
  await aborted;
  await t.rejects(engine.generateSuggestions(request(), new RecordingSink(), never()), { code: 'SERVER_SHUTTING_DOWN' });
  t.match(engine.health(), { status: 'unavailable' });
});
