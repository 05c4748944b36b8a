import { StoreError } from '../errors.js';
import type {
  SessionRecord,
  SessionSettingsPatch,
  SessionStore,
  StoreHealth,
  StoredMessage,
} from './session-store.js';

/**
 * Sessions in this process's memory only: for tests and for SESSION_PERSISTENCE_ENABLED=false.
 * It copies on the way in and out so that callers can't change stored state without a method call,
 * exactly like a durable store.
 */
export class MemorySessionStore implements SessionStore {
  readonly kind = 'memory' as const;
  readonly #sessions = new Map<string, SessionRecord>();

  create(record: SessionRecord): void {
    if (this.#sessions.has(record.id)) throw new StoreError(`session ${record.id} already exists`);
    this.#sessions.set(record.id, structuredClone(record));
  }

  load(sessionId: string): SessionRecord | null {
    const record = this.#sessions.get(sessionId);
    return record ? structuredClone(record) : null;
  }

  update(sessionId: string, patch: SessionSettingsPatch, updatedAt: string): void {
    const record = this.#get(sessionId);
    if (patch.scenarioDescription !== undefined) record.scenarioDescription = patch.scenarioDescription;
    if (patch.responseCount !== undefined) record.responseCount = patch.responseCount;
    if (patch.focusedMessageIds !== undefined) record.focusedMessageIds = [...patch.focusedMessageIds];
    if (patch.recording !== undefined) record.recording = structuredClone(patch.recording);
    record.updatedAt = updatedAt;
  }

  appendMessage(sessionId: string, message: StoredMessage, updatedAt: string): void {
    const record = this.#get(sessionId);
    record.messages.push({ ...message });
    record.updatedAt = updatedAt;
  }

  finishRecording(sessionId: string, message: StoredMessage, updatedAt: string): void {
    const record = this.#get(sessionId);
    record.recording = null;
    record.messages.push({ ...message });
    record.updatedAt = updatedAt;
  }

  appendModification(sessionId: string, modification: string, updatedAt: string): void {
    const record = this.#get(sessionId);
    record.modifications.push(modification);
    record.updatedAt = updatedAt;
  }

  appendRecordingSegment(sessionId: string, text: string, updatedAt: string): void {
    const record = this.#get(sessionId);
    if (record.recording === null) throw new StoreError(`session ${sessionId} is not recording`);
    record.recording.segments.push(text);
    record.updatedAt = updatedAt;
  }

  delete(sessionId: string): boolean {
    return this.#sessions.delete(sessionId);
  }

  deleteExpired(before: string): string[] {
    const expired: string[] = [];
    for (const [id, record] of this.#sessions) {
      if (record.updatedAt < before) expired.push(id);
    }
    for (const id of expired) this.#sessions.delete(id);
    return expired;
  }

  health(): StoreHealth {
    return { kind: 'memory', status: 'healthy', path: null, sessions: this.#sessions.size, lastError: null };
  }

  close(): void {
    this.#sessions.clear();
  }

  #get(sessionId: string): SessionRecord {
    const record = this.#sessions.get(sessionId);
    if (!record) throw new StoreError(`session ${sessionId} is not in the store`);
    return record;
  }
}
