import { StoreError } from '../errors.js';
import { estimateItemBytes, estimateMessageBytes, estimateSessionBytes } from './record-size.js';
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
  /** Estimated bytes of each stored session, and their sum (sizeBytes). */
  readonly #bytes = new Map<string, number>();
  #bytesTotal = 0;

  create(record: SessionRecord): void {
    if (this.#sessions.has(record.id)) throw new StoreError(`session ${record.id} already exists`);
    this.#sessions.set(record.id, structuredClone(record));
    this.#grow(record.id, estimateSessionBytes(record));
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
    if (patch.focusedMessageIds !== undefined || patch.recording !== undefined || patch.scenarioDescription !== undefined) {
      this.#grow(sessionId, estimateSessionBytes(record) - (this.#bytes.get(sessionId) ?? 0));
    }
  }

  appendMessage(sessionId: string, message: StoredMessage, updatedAt: string): void {
    const record = this.#get(sessionId);
    record.messages.push({ ...message });
    record.updatedAt = updatedAt;
    this.#grow(sessionId, estimateMessageBytes(message));
  }

  finishRecording(sessionId: string, message: StoredMessage, updatedAt: string): void {
    const record = this.#get(sessionId);
    record.recording = null;
    record.messages.push({ ...message });
    record.updatedAt = updatedAt;
    this.#grow(sessionId, estimateSessionBytes(record) - (this.#bytes.get(sessionId) ?? 0));
  }

  appendModification(sessionId: string, modification: string, updatedAt: string): void {
    const record = this.#get(sessionId);
    record.modifications.push(modification);
    record.updatedAt = updatedAt;
    this.#grow(sessionId, estimateItemBytes(modification));
  }

  appendRecordingSegment(sessionId: string, text: string, updatedAt: string): void {
    const record = this.#get(sessionId);
    if (record.recording === null) throw new StoreError(`session ${sessionId} is not recording`);
    record.recording.segments.push(text);
    record.updatedAt = updatedAt;
    this.#grow(sessionId, estimateItemBytes(text));
  }

  delete(sessionId: string): boolean {
    this.#bytesTotal -= this.#bytes.get(sessionId) ?? 0;
    this.#bytes.delete(sessionId);
    return this.#sessions.delete(sessionId);
  }

  deleteExpired(before: string): string[] {
    const expired: string[] = [];
    for (const [id, record] of this.#sessions) {
      if (record.updatedAt < before) expired.push(id);
    }
    for (const id of expired) this.delete(id);
    return expired;
  }

  health(): StoreHealth {
    return { kind: 'memory', status: 'healthy', path: null, sessions: this.#sessions.size, lastError: null };
  }

  sizeBytes(): number {
    return this.#bytesTotal;
  }

  close(): void {
    this.#sessions.clear();
    this.#bytes.clear();
    this.#bytesTotal = 0;
  }

  #grow(sessionId: string, bytes: number): void {
    this.#bytes.set(sessionId, (this.#bytes.get(sessionId) ?? 0) + bytes);
    this.#bytesTotal += bytes;
  }

  #get(sessionId: string): SessionRecord {
    const record = this.#sessions.get(sessionId);
    if (!record) throw new StoreError(`session ${sessionId} is not in the store`);
    return record;
  }
}
