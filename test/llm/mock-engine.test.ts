import { pino } from 'pino';
import t from 'tap';
import { MOODS, TENDENCIES, TONES, type DialogueContext } from '../../src/llm/engine.js';
import { MockLlmEngine } from '../../src/llm/mock-engine.js';
import { RecordingSink } from './recording-sink.js';

const silent = pino({ level: 'silent' });

const CONTEXT: DialogueContext = {
  scenarioDescription: '在超市问路',
  userProfile: null,
  targetProfile: null,
  historyMessages: [],
  sessionMessages: [{ messageId: 'msg_001', sender: '店员', content: '您找什么？' }],
  focusedMessages: [],
  userIntent: null,
  modifications: [],
};

const never = (): AbortSignal => new AbortController().signal;

t.test('streams exactly count distinct stand-in suggestions about the last message', async (t) => {
  const engine = new MockLlmEngine({ deltaDelayMs: 0, logger: silent });
  t.teardown(() => engine.close());
  for (const count of [1, 3, 5]) {
    const sink = new RecordingSink();
    const suggestions = await engine.generateSuggestions({ requestId: 'r', sessionId: 's', count, context: CONTEXT }, sink, never());
    t.equal(suggestions.length, count);
    t.equal(new Set(suggestions).size, count, 'distinct');
    t.ok(suggestions.every((s) => s.startsWith('(mock)') && s.includes('您找什么？')));
    t.same(sink.texts(), suggestions, 'deltas add up to the suggestions');
    t.ok(sink.writes.length > count, 'several deltas per suggestion');
  }
});

t.test('falls back to the scenario when the session has no message', async (t) => {
  const engine = new MockLlmEngine({ deltaDelayMs: 0, logger: silent });
  t.teardown(() => engine.close());
  const suggestions = await engine.generateSuggestions(
    { requestId: 'r', sessionId: 's', count: 2, context: { ...CONTEXT, sessionMessages: [] } },
    new RecordingSink(),
    never(),
  );
  t.ok(suggestions.every((s) => s.includes('在超市问路')));
});

t.test('paces deltas, waits for a full sink, and stops on abort', async (t) => {
  const engine = new MockLlmEngine({ deltaDelayMs: 5, logger: silent });
  t.teardown(() => engine.close());
  const sink = new RecordingSink();
  sink.block();
  const controller = new AbortController();
  sink.events.once('drained-called', () => controller.abort(new Error('superseded')));
  await t.rejects(
    engine.generateSuggestions({ requestId: 'r', sessionId: 's', count: 3, context: CONTEXT }, sink, controller.signal),
    { message: 'superseded' },
  );
  t.equal(sink.writes.length, 1, 'nothing written after write() returned false');
  t.equal(engine.health().inFlight, 0);

  const released = new RecordingSink();
  released.block();
  released.events.once('drained-called', () => released.release());
  const suggestions = await engine.generateSuggestions(
    { requestId: 'r', sessionId: 's', count: 2, context: CONTEXT }, released, never());
  t.same(released.texts(), suggestions, 'resumes after drain');
  const first = released.writes[0]?.at ?? 0;
  const last = released.writes.at(-1)?.at ?? 0;
  t.ok(last - first >= 5 * (released.writes.length - 1) * 0.8, 'deltas are paced');
});

t.test('an abort during the delay rejects with the signal reason', async (t) => {
  const engine = new MockLlmEngine({ deltaDelayMs: 10_000, logger: silent });
  t.teardown(() => engine.close());
  const controller = new AbortController();
  const pending = engine.generateSuggestions({ requestId: 'r', sessionId: 's', count: 1, context: CONTEXT }, new RecordingSink(), controller.signal);
  controller.abort(new Error('stop'));
  await t.rejects(pending, { message: 'stop' });
});

t.test('predicts deterministically from the allowed lists', async (t) => {
  const engine = new MockLlmEngine({ deltaDelayMs: 0, logger: silent });
  t.teardown(() => engine.close());
  const request = { requestId: 'p', sessionId: 's', context: CONTEXT, selectedContent: '我找牛奶' };
  const a = await engine.predictOpinion(request, never());
  const b = await engine.predictOpinion(request, never());
  t.same(a, b);
  t.ok((TENDENCIES as readonly string[]).includes(a.tendency));
  t.ok((MOODS as readonly string[]).includes(a.mood));
  t.ok((TONES as readonly string[]).includes(a.tone));
  t.match(engine.health(), { engine: 'mock', status: 'degraded', model: null });
});
