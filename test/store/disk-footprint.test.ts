import { statSync } from 'node:fs';
import t from 'tap';
import { SqliteSessionStore } from '../../src/store/sqlite-store.js';
import { capturedLogger, fullRecord } from './store-fixtures.js';

// Issue 12 #3: 400 sessions of ~900 KB history took 1.6 GB on disk (4.6x the text). The cause, measured
// (bench/store-footprint.ts): messages of ~1-2 KB in a WITHOUT ROWID table each spill a small tail into
// an overflow page of their own. Messages now live in a rowid table (migration 3). The file, checkpointed,
// stays under 1.6x the UTF-8 bytes of the text for such messages (4.65x / 3.1x before).

for (const messageBytes of [1_000, 1_500]) {
  t.test(`history of ${messageBytes}-byte messages: the file stays under 1.6x the text`, async (t) => {
    const dir = t.testdir();
    const store = new SqliteSessionStore({ dir, logger: capturedLogger().logger });
    let textBytes = 0;
    for (let s = 0; s < 4; s++) {
      const historyMessages = Array.from({ length: 900 }, (_, i) => ({
        messageId: `h-${i}`,
        sender: 'other',
        content: 'a'.repeat(messageBytes),
        createdAt: '2025-01-01T00:00:00.000Z',
        type: 'history' as const,
      }));
      textBytes += historyMessages.length * messageBytes;
      store.create(fullRecord(`s-${s}`, { historyMessages, messages: [], modifications: [], recording: null }));
    }
    store.close(); // checkpoints the WAL into the file
    const ratio = statSync(store.path).size / textBytes;
    t.ok(ratio < 1.6, `file / text = ${ratio.toFixed(2)}`);
  });
}
