import t, { type Test } from 'tap';
import { MemorySessionStore } from '../../src/store/memory-store.js';
import type { SessionStore } from '../../src/store/session-store.js';
import { RedisSessionStore } from '../../src/store/redis-store.js';
import { SqliteSessionStore } from '../../src/store/sqlite-store.js';
import { startRedis } from '../cluster/redis-kit.js';
import { capturedLogger, fullRecord } from './store-fixtures.js';

// The same script against every store: whatever the memory store returns, the SQLite and Redis stores
// return too (sqlite-store.test.ts then checks that the file gives it all back after a reopen and a
// crash; test/cluster/ does the same for Redis across nodes).

// One real redis-server for the file; each test gets its own key prefix.
const redis = await startRedis(t);
let redisRuns = 0;

const stores: Array<[string, (t: Test) => SessionStore]> = [
  ['memory', () => new MemorySessionStore()],
  ['sqlite', (t) => new SqliteSessionStore({ dir: t.testdir(), logger: capturedLogger().logger })],
  [
    'redis',
    () =>
      new RedisSessionStore({
        url: redis.url,
        prefix: `contract${++redisRuns}:`,
        nodeId: 'node-a',
        leaseMs: 5_000,
        ttlMs: 3_600_000,
        commandTimeoutMs: 2_000,
        handoverTimeoutMs: 1_000,
        logger: capturedLogger().logger,
      }),
  ],
];

for (const [kind, open] of stores) {
  t.test(`${kind}: a record round-trips every field exactly`, async (t) => {
    const store = open(t);
    t.teardown(() => store.close());
    const record = fullRecord('s-1');
    store.create(record);
    t.same(store.load('s-1'), record, 'load returns what create stored');
    t.strictSame(Object.keys(store.load('s-1')!.targetProfile!), ['common_topics', 'name', 'zeta', 'alpha'], 'profile key order kept');
    t.equal(store.load('missing'), null);
    const copy = store.load('s-1')!;
    copy.messages.push(copy.messages[0]!);
    t.equal(store.load('s-1')!.messages.length, 2, 'a loaded copy does not alias the store');
  });

  t.test(`${kind}: null profiles, no scenario, empty lists`, async (t) => {
    const store = open(t);
    t.teardown(() => store.close());
    const record = fullRecord('s-2', {
      userProfile: null,
      targetProfile: null,
      scenarioDescription: null,
      historyMessages: [],
      messages: [],
      focusedMessageIds: [],
      modifications: [],
      recording: null,
    });
    store.create(record);
    t.same(store.load('s-2'), record);
  });

  t.test(`${kind}: every change method, in order, as Session calls them`, async (t) => {
    const store = open(t);
    t.teardown(() => store.close());
    store.create(fullRecord('s-3', { messages: [], modifications: [], recording: null, focusedMessageIds: [] }));
    store.update('s-3', { responseCount: 2, scenarioDescription: 'new scenario' }, '2025-02-01T00:00:00.000Z');
    store.update('s-3', { focusedMessageIds: ['h-1'] }, '2025-02-01T00:00:01.000Z');
    store.appendModification('s-3', 'first', '2025-02-01T00:00:02.000Z');
    store.appendModification('s-3', 'second', '2025-02-01T00:00:03.000Z');
    store.update('s-3', { recording: { messageId: 'msg_001', sender: 'other', segments: [], startedAt: '2025-02-01T00:00:04.000Z' } }, '2025-02-01T00:00:04.000Z');
    store.appendRecordingSegment('s-3', 'alpha', '2025-02-01T00:00:05.000Z');
    store.appendRecordingSegment('s-3', 'bravo', '2025-02-01T00:00:06.000Z');
    const mid = store.load('s-3')!;
    t.same(mid.recording, { messageId: 'msg_001', sender: 'other', segments: ['alpha', 'bravo'], startedAt: '2025-02-01T00:00:04.000Z' });
    t.equal(mid.updatedAt, '2025-02-01T00:00:06.000Z', 'a segment counts as activity');

    store.update('s-3', { recording: null }, '2025-02-01T00:00:07.000Z');
    const recorded = { messageId: 'msg_001', sender: 'other', content: 'alpha bravo', createdAt: '2025-02-01T00:00:07.000Z', type: 'recording' as const };
    store.appendMessage('s-3', recorded, '2025-02-01T00:00:07.000Z');
    const chosen = { messageId: 'usr_002', sender: 'user', content: 'ok', createdAt: '2025-02-01T00:00:08.000Z', type: 'selected_response' as const };
    store.appendMessage('s-3', chosen, '2025-02-01T00:00:08.000Z');
    store.update('s-3', { scenarioDescription: null }, '2025-02-01T00:00:09.000Z');

    const after = store.load('s-3')!;
    t.same(after.messages, [recorded, chosen], 'messages in order');
    t.same(after.modifications, ['first', 'second'], 'modifications in order');
    t.equal(after.recording, null);
    t.equal(after.responseCount, 2);
    t.equal(after.scenarioDescription, null, 'a scenario can be cleared');
    t.same(after.focusedMessageIds, ['h-1']);
    t.equal(after.updatedAt, '2025-02-01T00:00:09.000Z');
    t.equal(after.historyMessages.length, 2, 'history untouched');

    store.update('s-3', { recording: { messageId: 'msg_003', sender: 'other', segments: ['carried'], startedAt: '2025-02-01T00:00:10.000Z' } }, '2025-02-01T00:00:10.000Z');
    t.same(store.load('s-3')!.recording!.segments, ['carried'], 'a new recording starts from its own segments, not the old ones');
  });

  t.test(`${kind}: unknown sessions and misuse throw STORAGE_ERROR and change nothing`, async (t) => {
    const store = open(t);
    t.teardown(() => store.close());
    store.create(fullRecord('s-4', { recording: null }));
    t.throws(() => store.create(fullRecord('s-4')), { code: 'STORAGE_ERROR' }, 'duplicate id');
    t.throws(() => store.update('nope', { responseCount: 1 }, '2025-03-01T00:00:00.000Z'), { code: 'STORAGE_ERROR' });
    t.throws(() => store.appendMessage('nope', fullRecord('x').messages[0]!, '2025-03-01T00:00:00.000Z'), { code: 'STORAGE_ERROR' });
    t.throws(() => store.appendModification('nope', 'm', '2025-03-01T00:00:00.000Z'), { code: 'STORAGE_ERROR' });
    t.throws(() => store.appendRecordingSegment('s-4', 'text', '2025-03-01T00:00:00.000Z'), { code: 'STORAGE_ERROR' }, 'not recording');
    t.same(store.load('s-4'), fullRecord('s-4', { recording: null }), 'the failed calls left no trace');
    t.equal(store.health().status, 'healthy', 'a caller mistake is not a storage fault');
  });

  t.test(`${kind}: delete and deleteExpired`, async (t) => {
    const store = open(t);
    t.teardown(() => store.close());
    store.create(fullRecord('old-1', { updatedAt: '2025-01-01T00:00:00.000Z' }));
    store.create(fullRecord('old-2', { updatedAt: '2025-01-01T00:59:59.999Z' }));
    store.create(fullRecord('fresh', { updatedAt: '2025-01-01T01:00:00.000Z' }));
    store.create(fullRecord('gone', { updatedAt: '2025-01-01T02:00:00.000Z' }));
    t.equal(store.delete('gone'), true);
    t.equal(store.delete('gone'), false, 'a second delete finds nothing');
    t.same(store.deleteExpired('2025-01-01T01:00:00.000Z').sort(), ['old-1', 'old-2'], 'strictly before the cut-off');
    t.equal(store.load('old-1'), null);
    t.not(store.load('fresh'), null);
    t.equal(store.health().sessions, 1);
  });
}
