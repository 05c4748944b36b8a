import t from 'tap';
import { MemorySessionStore } from '../../src/store/memory-store.js';
import type { SessionStore } from '../../src/store/session-store.js';
import { fullRecord, openStore } from './store-fixtures.js';

// sizeBytes() is what SESSION_STORE_MAX_MB bounds: it grows with what is stored, falls when sessions go
// (SQLite: its pages become free and are reused before the file grows), and costs no scan.

const history = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ messageId: `h-${i}`, sender: 'other', content: '话'.repeat(900), createdAt: '2025-01-01T00:00:00.000Z', type: 'history' as const }));

for (const kind of ['memory', 'sqlite'] as const) {
  t.test(`${kind}: sizeBytes follows what is stored`, async (t) => {
    const store: SessionStore = kind === 'memory' ? new MemorySessionStore() : openStore(t);
    const empty = store.sizeBytes();
    store.create(fullRecord('a', { historyMessages: history(500) }));
    const one = store.sizeBytes();
    t.ok(one - empty > 500 * 900 * 2, `one session of 500 messages: +${one - empty} bytes`);
    store.create(fullRecord('b', { historyMessages: history(500) }));
    const two = store.sizeBytes();
    t.ok(two - one > 500 * 900 * 2, `two: +${two - one}`);
    store.appendMessage('b', { messageId: 'usr_9', sender: 'user', content: '好'.repeat(20_000), createdAt: '2025-01-01T00:00:01.000Z', type: 'selected_response' }, '2025-01-01T00:00:01.000Z');
    t.ok(store.sizeBytes() > two, 'an appended message counts');
    store.delete('a');
    store.deleteExpired('2026-01-01T00:00:00.000Z');
    t.ok(store.sizeBytes() < one, `deleted sessions free their share (${store.sizeBytes()} < ${one})`);
  });
}
