import type { Migration } from './migration.js';

// Messages move from a WITHOUT ROWID table to an ordinary (rowid) table, to stop wasting disk.
//
// A WITHOUT ROWID row lives in an index b-tree, where a row keeps at most ~1,000 bytes on its 4 KiB page
// and, past that, only ~490 bytes there and the rest in overflow pages of its own. A message of 1-4 KB
// (a few hundred CJK characters; the app's history is full of them) therefore takes a whole 4 KiB overflow
// page for its tail: measured (bench/store-footprint.ts, docs/persistence.md) 1.7x the text for 900-CJK-
// character messages and up to ~3.8x just above the threshold. SQLite's own advice is WITHOUT ROWID only
// for rows under ~1/20 of a page. An ordinary table keeps rows of up to ~4,060 bytes whole on the page,
// and longer ones fill their overflow pages. The key (session_id, list, seq) stays unique through an index.
export const messagesRowid: Migration = {
  version: 3,
  name: 'store messages in a rowid table (large rows no longer waste overflow pages)',
  sql: `
    CREATE TABLE messages_v3 (
      session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
      list       TEXT NOT NULL CHECK (list IN ('history', 'session')),
      seq        INTEGER NOT NULL,
      message_id TEXT NOT NULL,
      sender     TEXT NOT NULL,
      content    TEXT NOT NULL,
      created_at TEXT NOT NULL,
      type       TEXT NOT NULL CHECK (type IN ('history', 'recording', 'selected_response')),
      UNIQUE (session_id, list, seq)
    ) STRICT;
    INSERT INTO messages_v3 (session_id, list, seq, message_id, sender, content, created_at, type)
      SELECT session_id, list, seq, message_id, sender, content, created_at, type FROM messages ORDER BY session_id, list, seq;
    DROP TABLE messages;
    ALTER TABLE messages_v3 RENAME TO messages;
  `,
};
