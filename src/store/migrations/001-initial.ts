import type { Migration } from './migration.js';

// The first schema. A session is one row; its lists (messages, modifications, recording segments) are
// rows of their own so that every event appends one small row instead of rewriting the session.
// Positions (`seq`) keep the order the client saw. ON DELETE CASCADE: deleting a session deletes all of it.
export const initialSchema: Migration = {
  version: 1,
  name: 'initial schema',
  sql: `
    CREATE TABLE sessions (
      id                   TEXT PRIMARY KEY NOT NULL,
      created_at           TEXT NOT NULL,
      updated_at           TEXT NOT NULL,
      scenario_description TEXT,
      response_count       INTEGER NOT NULL,
      -- Profiles exactly as the client sent them, as JSON text; NULL when the client sent none.
      user_profile         TEXT,
      target_profile       TEXT,
      -- JSON array of message ids.
      focused_message_ids  TEXT NOT NULL DEFAULT '[]'
    ) STRICT;

    CREATE TABLE messages (
      session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
      -- 'history': given in conversation_start; 'session': recorded or chosen during the session.
      list       TEXT NOT NULL CHECK (list IN ('history', 'session')),
      seq        INTEGER NOT NULL,
      message_id TEXT NOT NULL,
      sender     TEXT NOT NULL,
      content    TEXT NOT NULL,
      created_at TEXT NOT NULL,
      type       TEXT NOT NULL CHECK (type IN ('history', 'recording', 'selected_response')),
      PRIMARY KEY (session_id, list, seq)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE modifications (
      session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
      seq          INTEGER NOT NULL,
      modification TEXT NOT NULL,
      PRIMARY KEY (session_id, seq)
    ) STRICT, WITHOUT ROWID;

    -- At most one recording in progress per session.
    CREATE TABLE recordings (
      session_id TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
      message_id TEXT NOT NULL,
      sender     TEXT NOT NULL,
      started_at TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE recording_segments (
      session_id TEXT NOT NULL REFERENCES recordings (session_id) ON DELETE CASCADE,
      seq        INTEGER NOT NULL,
      text       TEXT NOT NULL,
      PRIMARY KEY (session_id, seq)
    ) STRICT, WITHOUT ROWID;
  `,
};
