import t from 'tap';
import { capturedLogger, fullRecord, openStore } from './store-fixtures.js';

// Data the store cannot serialise is the caller's fault, not the disk's: the write is refused with
// INVALID_EVENT_DATA and never counts towards the failures that turn the store (and /readyz) unavailable.
// (Issue 12 #2: three deep profiles in a row used to make the store report `unavailable`.)

function deepArray(depth: number): unknown {
  let value: unknown = [];
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

t.test('an unserialisable profile: INVALID_EVENT_DATA, nothing stored, health untouched', async (t) => {
  const { logger, lines } = capturedLogger();
  const store = openStore(t, { logger });
  for (let i = 0; i < 10; i++) {
    const record = fullRecord(`deep-${i}`, { userProfile: { name: 'x', extra: deepArray(20_000) } });
    t.throws(() => store.create(record), { code: 'INVALID_EVENT_DATA', details: /^data\.user_profile: / });
    t.equal(store.load(`deep-${i}`), null, 'nothing half-written');
  }
  t.throws(() => store.create(fullRecord('big', { targetProfile: { n: 10n } })), { code: 'INVALID_EVENT_DATA', details: /^data\.target_profile: / });
  t.match(store.health(), { status: 'healthy', lastError: null });
  t.notOk(lines.some((line) => line.msg === 'session store writes are failing'), 'no storage failure logged');
  store.create(fullRecord('fine'));
  t.ok(store.load('fine'), 'the store works as before');
});
