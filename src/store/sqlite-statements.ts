// The SQL of the session store: every statement prepared once, and one transaction per store method.
// sqlite-store.ts owns the connection, errors and health; this file owns what is read and written.
import type Database from 'better-sqlite3';
import { InvalidEventDataError, StoreError } from '../errors.js';
import type { ProfileJson } from '../protocol/server-events.js';
import type { RecordingState, SessionRecord, SessionSettingsPatch, StoredMessage } from './session-store.js';

interface SessionRow {
  id: string;
  created_at: string;
  updated_at: string;
  scenario_description: string | null;
  response_count: number;
  user_profile: string | null;
  target_profile: string | null;
  focused_message_ids: string;
  owner: string | null;
}

interface MessageRow {
  list: 'history' | 'session';
  message_id: string;
  sender: string;
  content: string;
  created_at: string;
  type: StoredMessage['type'];
}

interface RecordingRow {
  message_id: string;
  sender: string;
  started_at: string;
}

/** Every statement the store runs, prepared once when the store opens. */
export function prepareStatements(db: Database.Database) {
  return {
    sessionExists: db.prepare<[string], { found: number }>('SELECT 1 AS found FROM sessions WHERE id = ?'),
    insertSession: db.prepare(
      `INSERT INTO sessions (id, created_at, updated_at, scenario_description, response_count, user_profile, target_profile, focused_message_ids, owner)
       VALUES (@id, @createdAt, @updatedAt, @scenarioDescription, @responseCount, @userProfile, @targetProfile, @focusedMessageIds, @owner)`,
    ),
    insertMessageAt: db.prepare(
      `INSERT INTO messages (session_id, list, seq, message_id, sender, content, created_at, type)
       VALUES (@sessionId, @list, @seq, @messageId, @sender, @content, @createdAt, @type)`,
    ),
    appendSessionMessage: db.prepare(
      `INSERT INTO messages (session_id, list, seq, message_id, sender, content, created_at, type)
       VALUES (@sessionId, 'session',
               (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE session_id = @sessionId AND list = 'session'),
               @messageId, @sender, @content, @createdAt, @type)`,
    ),
    appendModification: db.prepare(
      `INSERT INTO modifications (session_id, seq, modification)
       VALUES (@sessionId, (SELECT COALESCE(MAX(seq), 0) + 1 FROM modifications WHERE session_id = @sessionId), @modification)`,
    ),
    touch: db.prepare<[string, string]>('UPDATE sessions SET updated_at = ? WHERE id = ?'),
    setScenario: db.prepare<[string | null, string]>('UPDATE sessions SET scenario_description = ? WHERE id = ?'),
    setResponseCount: db.prepare<[number, string]>('UPDATE sessions SET response_count = ? WHERE id = ?'),
    setFocused: db.prepare<[string, string]>('UPDATE sessions SET focused_message_ids = ? WHERE id = ?'),
    deleteRecording: db.prepare<[string]>('DELETE FROM recordings WHERE session_id = ?'),
    insertRecording: db.prepare(
      'INSERT INTO recordings (session_id, message_id, sender, started_at) VALUES (@sessionId, @messageId, @sender, @startedAt)',
    ),
    recordingExists: db.prepare<[string], { found: number }>('SELECT 1 AS found FROM recordings WHERE session_id = ?'),
    insertSegmentAt: db.prepare<[string, number, string]>('INSERT INTO recording_segments (session_id, seq, text) VALUES (?, ?, ?)'),
    appendSegment: db.prepare(
      `INSERT INTO recording_segments (session_id, seq, text)
       VALUES (@sessionId, (SELECT COALESCE(MAX(seq), 0) + 1 FROM recording_segments WHERE session_id = @sessionId), @text)`,
    ),
    selectSession: db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id = ?'),
    selectMessages: db.prepare<[string], MessageRow>(
      'SELECT list, message_id, sender, content, created_at, type FROM messages WHERE session_id = ? ORDER BY list, seq',
    ),
    selectModifications: db.prepare<[string], { modification: string }>(
      'SELECT modification FROM modifications WHERE session_id = ? ORDER BY seq',
    ),
    selectRecording: db.prepare<[string], RecordingRow>('SELECT message_id, sender, started_at FROM recordings WHERE session_id = ?'),
    selectSegments: db.prepare<[string], { text: string }>('SELECT text FROM recording_segments WHERE session_id = ? ORDER BY seq'),
    deleteSession: db.prepare<[string]>('DELETE FROM sessions WHERE id = ?'),
    deleteExpired: db.prepare<[string], { id: string }>('DELETE FROM sessions WHERE updated_at < ? RETURNING id'),
    countSessions: db.prepare<[], { count: number }>('SELECT COUNT(*) AS count FROM sessions'),
    // Pages in use (free pages are reused before the file grows) times the page size: no scan, O(1).
    usedBytes: db.prepare<[], { bytes: number }>(
      'SELECT (page_count - freelist_count) * page_size AS bytes FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()',
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;

/** The multi-statement operations, each one transaction; built once (better-sqlite3 wraps them once). */
export function prepareTransactions(db: Database.Database, s: Statements) {
  const touch = (sessionId: string, updatedAt: string): void => {
    if (s.touch.run(updatedAt, sessionId).changes === 0) throw notInStore(sessionId);
  };
  const insertRecording = (sessionId: string, recording: RecordingState): void => {
    s.insertRecording.run({ sessionId, messageId: recording.messageId, sender: recording.sender, startedAt: recording.startedAt });
    recording.segments.forEach((text, index) => s.insertSegmentAt.run(sessionId, index + 1, text));
  };
  return {
    create: db.transaction((record: SessionRecord) => {
      if (s.sessionExists.get(record.id)) throw new StoreError(`session ${record.id} already exists`, { details: `session_id: ${record.id}` });
      s.insertSession.run({
        id: record.id,
        createdAt: record.createdAt,
        updatedAt: record.updatedAt,
        scenarioDescription: record.scenarioDescription,
        responseCount: record.responseCount,
        userProfile: profileToJson(record.userProfile, 'user_profile'),
        targetProfile: profileToJson(record.targetProfile, 'target_profile'),
        focusedMessageIds: JSON.stringify(record.focusedMessageIds),
        owner: record.owner ?? null,
      });
      const insertList = (list: 'history' | 'session', messages: readonly StoredMessage[]): void => {
        messages.forEach((message, index) => s.insertMessageAt.run({ sessionId: record.id, list, seq: index + 1, ...message }));
      };
      insertList('history', record.historyMessages);
      insertList('session', record.messages);
      for (const modification of record.modifications) s.appendModification.run({ sessionId: record.id, modification });
      if (record.recording) insertRecording(record.id, record.recording);
    }),
    load: db.transaction((sessionId: string): SessionRecord | null => {
      const row = s.selectSession.get(sessionId);
      if (!row) return null;
      const historyMessages: StoredMessage[] = [];
      const messages: StoredMessage[] = [];
      for (const message of s.selectMessages.all(sessionId)) {
        const stored: StoredMessage = {
          messageId: message.message_id,
          sender: message.sender,
          content: message.content,
          createdAt: message.created_at,
          type: message.type,
        };
        (message.list === 'history' ? historyMessages : messages).push(stored);
      }
      const recordingRow = s.selectRecording.get(sessionId);
      const recording: RecordingState | null = recordingRow
        ? {
            messageId: recordingRow.message_id,
            sender: recordingRow.sender,
            startedAt: recordingRow.started_at,
            segments: s.selectSegments.all(sessionId).map((segment) => segment.text),
          }
        : null;
      return {
        id: row.id,
        owner: row.owner,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
        scenarioDescription: row.scenario_description,
        responseCount: row.response_count,
        userProfile: profileFromJson(row.user_profile),
        targetProfile: profileFromJson(row.target_profile),
        historyMessages,
        messages,
        focusedMessageIds: JSON.parse(row.focused_message_ids) as string[],
        modifications: s.selectModifications.all(sessionId).map((m) => m.modification),
        recording,
      };
    }),
    update: db.transaction((sessionId: string, patch: SessionSettingsPatch, updatedAt: string) => {
      touch(sessionId, updatedAt);
      if (patch.scenarioDescription !== undefined) s.setScenario.run(patch.scenarioDescription, sessionId);
      if (patch.responseCount !== undefined) s.setResponseCount.run(patch.responseCount, sessionId);
      if (patch.focusedMessageIds !== undefined) s.setFocused.run(JSON.stringify(patch.focusedMessageIds), sessionId);
      if (patch.recording !== undefined) {
        s.deleteRecording.run(sessionId); // its segments go with it (ON DELETE CASCADE)
        if (patch.recording !== null) insertRecording(sessionId, patch.recording);
      }
    }),
    appendMessage: db.transaction((sessionId: string, message: StoredMessage, updatedAt: string) => {
      touch(sessionId, updatedAt);
      s.appendSessionMessage.run({ sessionId, ...message });
    }),
    finishRecording: db.transaction((sessionId: string, message: StoredMessage, updatedAt: string) => {
      touch(sessionId, updatedAt);
      s.deleteRecording.run(sessionId);
      s.appendSessionMessage.run({ sessionId, ...message });
    }),
    appendModification: db.transaction((sessionId: string, modification: string, updatedAt: string) => {
      touch(sessionId, updatedAt);
      s.appendModification.run({ sessionId, modification });
    }),
    appendRecordingSegment: db.transaction((sessionId: string, text: string, updatedAt: string) => {
      touch(sessionId, updatedAt);
      if (!s.recordingExists.get(sessionId)) throw new StoreError(`session ${sessionId} is not recording`, { details: `session_id: ${sessionId}` });
      s.appendSegment.run({ sessionId, text });
    }),
  };
}

export type Transactions = ReturnType<typeof prepareTransactions>;

function notInStore(sessionId: string): StoreError {
  return new StoreError(`session ${sessionId} is not in the store`, { details: `session_id: ${sessionId}` });
}

/**
 * A profile as JSON text. The protocol layer bounds what a profile holds, so this cannot fail for
 * anything a client sent; should it ever (a value JSON cannot represent), the client's data is at fault,
 * not the disk: INVALID_EVENT_DATA, never counted as a storage failure.
 */
function profileToJson(profile: ProfileJson, field: string): string | null {
  if (profile === null) return null;
  try {
    return JSON.stringify(profile);
  } catch (err) {
    throw new InvalidEventDataError(`${field} cannot be stored`, { details: `data.${field}: ${(err as Error).message}`, cause: err });
  }
}

function profileFromJson(json: string | null): ProfileJson {
  return json === null ? null : (JSON.parse(json) as ProfileJson);
}
