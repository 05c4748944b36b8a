import type { SessionRecord, SessionSettingsPatch, SessionStore, StoredMessage, StoreHealth } from '../store/session-store.js';
import type { Metrics } from './metrics.js';

type WriteOperation = 'create' | 'update' | 'appendMessage' | 'finishRecording' | 'appendModification' | 'appendRecordingSegment' | 'delete' | 'deleteExpired';

/**
 * A SessionStore that times every write (voxgate_store_write_seconds) and counts the ones that
 * throw (voxgate_store_write_failures_total{operation}), passing results and errors on unchanged. The
 * store's methods are synchronous (better-sqlite3), so the time is the whole committed transaction.
 */
export class InstrumentedStore implements SessionStore {
  readonly #store: SessionStore;
  readonly #metrics: Metrics;

  constructor(store: SessionStore, metrics: Metrics) {
    this.#store = store;
    this.#metrics = metrics;
  }

  get kind(): SessionStore['kind'] {
    return this.#store.kind;
  }

  create(record: SessionRecord): void {
    this.#timed('create', () => this.#store.create(record));
  }

  load(sessionId: string): SessionRecord | null {
    return this.#store.load(sessionId);
  }

  update(sessionId: string, patch: SessionSettingsPatch, updatedAt: string): void {
    this.#timed('update', () => this.#store.update(sessionId, patch, updatedAt));
  }

  appendMessage(sessionId: string, message: StoredMessage, updatedAt: string): void {
    this.#timed('appendMessage', () => this.#store.appendMessage(sessionId, message, updatedAt));
  }

  finishRecording(sessionId: string, message: StoredMessage, updatedAt: string): void {
    this.#timed('finishRecording', () => this.#store.finishRecording(sessionId, message, updatedAt));
  }

  appendModification(sessionId: string, modification: string, updatedAt: string): void {
    this.#timed('appendModification', () => this.#store.appendModification(sessionId, modification, updatedAt));
  }

  appendRecordingSegment(sessionId: string, text: string, updatedAt: string): void {
    this.#timed('appendRecordingSegment', () => this.#store.appendRecordingSegment(sessionId, text, updatedAt));
  }

  delete(sessionId: string): boolean {
    return this.#timed('delete', () => this.#store.delete(sessionId));
  }

  deleteExpired(before: string): string[] {
    return this.#timed('deleteExpired', () => this.#store.deleteExpired(before));
  }

  health(): StoreHealth {
    return this.#store.health();
  }

  sizeBytes(): number {
    return this.#store.sizeBytes();
  }

  close(): void {
    this.#store.close();
  }

  #timed<T>(operation: WriteOperation, write: () => T): T {
    const startedAt = performance.now();
    try {
      return write();
    } catch (err) {
      this.#metrics.storeWriteFailures.inc({ operation });
      throw err;
    } finally {
      this.#metrics.storeWrite.observe((performance.now() - startedAt) / 1000);
    }
  }
}
