import type { ServiceState } from '../stt/engine.js';
import type { MessageType, ProfileJson } from '../protocol/server-events.js';

// What a session is, durably. The session manager owns live state (connections, STT streams, LLM
// requests); a SessionStore keeps the part a user would lose if the process died. Every method commits
// before it returns, so the caller may acknowledge to the client right after: write before acknowledge.
// Methods throw StoreError when the write did not happen; the caller then must not change its state.

export interface StoredMessage {
  messageId: string;
  sender: string;
  content: string;
  /** ISO-8601. */
  createdAt: string;
  type: MessageType;
}

/** A recording in progress: the text of every endpoint segment recognised so far. */
export interface RecordingState {
  messageId: string;
  sender: string;
  segments: string[];
  startedAt: string;
}

export interface SessionRecord {
  id: string;
  /**
   * The credential owner that created the session (`sub:<sub>`, `key:<digest prefix>`); null or absent
   * when it was created without credentials: then any connection may resume it.
   */
  owner?: string | null;
  createdAt: string;
  updatedAt: string;
  scenarioDescription: string | null;
  responseCount: number;
  /** Profiles exactly as the client sent them (profile_archive returns them unchanged). */
  userProfile: ProfileJson;
  targetProfile: ProfileJson;
  historyMessages: StoredMessage[];
  messages: StoredMessage[];
  focusedMessageIds: string[];
  modifications: string[];
  recording: RecordingState | null;
}

export interface SessionSettingsPatch {
  scenarioDescription?: string | null;
  responseCount?: number;
  focusedMessageIds?: string[];
  recording?: RecordingState | null;
}

export interface StoreHealth {
  kind: 'memory' | 'sqlite' | 'redis';
  status: ServiceState;
  path: string | null;
  sessions: number;
  lastError: string | null;
}

export interface SessionStore {
  readonly kind: 'memory' | 'sqlite' | 'redis';
  create(record: SessionRecord): void;
  /** A copy of the stored session, or null. */
  load(sessionId: string): SessionRecord | null;
  update(sessionId: string, patch: SessionSettingsPatch, updatedAt: string): void;
  appendMessage(sessionId: string, message: StoredMessage, updatedAt: string): void;
  /** Ends the recording in progress and stores its message, in one transaction. */
  finishRecording(sessionId: string, message: StoredMessage, updatedAt: string): void;
  appendModification(sessionId: string, modification: string, updatedAt: string): void;
  appendRecordingSegment(sessionId: string, text: string, updatedAt: string): void;
  /** Returns whether a session was deleted. */
  delete(sessionId: string): boolean;
  /** Deletes sessions whose updatedAt is before `before` (ISO-8601); returns their ids. */
  deleteExpired(before: string): string[];
  health(): StoreHealth;
  /**
   * What the stored sessions take: for SQLite the database pages in use (the file, less its free pages;
   * the WAL not counted), for the memory store their estimated memory. SESSION_STORE_MAX_MB bounds it.
   */
  sizeBytes(): number;
  close(): void;
}
