import type { Logger } from 'pino';
import type { DialogueContext, ContextMessage, Profile } from '../llm/engine.js';
import type { ProfileJson, SessionStatus } from '../protocol/server-events.js';
import type {
  RecordingState,
  SessionRecord,
  SessionSettingsPatch,
  SessionStore,
  StoredMessage,
} from '../store/session-store.js';
import type { SttStream } from '../stt/engine.js';
import type { ClientChannel } from './channel.js';

/** The live part of a recording: its STT stream and audio accounting. Never persisted. */
export interface LiveRecording {
  readonly messageId: string;
  readonly sender: string;
  readonly stream: SttStream;
  /** Endpoint segments recognised so far (mirrors the durable RecordingState.segments). */
  readonly segments: string[];
  /** The current segment's partial text. */
  partial: string;
  /** The last transcript_partial text sent, so that an unchanged text is not sent twice. */
  lastSentText: string;
  audioBytes: number;
  hasReportedAudioLimit: boolean;
  /** Set when the STT stream failed; the recording then ends with the text recognised before. */
  failure: Error | null;
  /** Uncounts the recording from its connection's recordings quota; called when the recording detaches. */
  quotaRelease: (() => void) | null;
}

/**
 * One conversation. It owns its state: every change goes to the store first (which throws StoreError if
 * the write failed) and only then to memory, so nothing is acknowledged that was not saved and a failed
 * write leaves the session as it was. Only SessionManager creates sessions and attaches connections.
 */
export class Session {
  readonly id: string;
  readonly log: Logger;
  readonly #store: SessionStore;
  readonly #record: SessionRecord;
  readonly #channels = new Set<ClientChannel>();
  #status: SessionStatus;
  #recording: LiveRecording | null = null;
  #lastMessageNumber: number;
  #touchedAtMs = 0;
  /** The latest `user_corpus` (what the user typed they want to say); live only, the app resends it. */
  #userIntent: string | null = null;

  /** The credential owner that created it, or null (created without credentials: open to any connection). */
  get owner(): string | null {
    return this.#record.owner ?? null;
  }

  constructor(record: SessionRecord, store: SessionStore, log: Logger) {
    this.id = record.id;
    this.#record = record;
    this.#store = store;
    this.log = log;
    this.#status = record.recording ? 'recording_message' : 'idle';
    // A recording in progress already reserved its message number.
    this.#lastMessageNumber = record.messages.length + (record.recording ? 1 : 0);
  }

  // --- read access -------------------------------------------------------------------------------

  get status(): SessionStatus {
    return this.#status;
  }
  get responseCount(): number {
    return this.#record.responseCount;
  }
  get scenarioDescription(): string | null {
    return this.#record.scenarioDescription;
  }
  get userProfile(): ProfileJson {
    return this.#record.userProfile;
  }
  get targetProfile(): ProfileJson {
    return this.#record.targetProfile;
  }
  get historyMessages(): readonly StoredMessage[] {
    return this.#record.historyMessages;
  }
  get messages(): readonly StoredMessage[] {
    return this.#record.messages;
  }
  get modifications(): readonly string[] {
    return this.#record.modifications;
  }
  get updatedAt(): string {
    return this.#record.updatedAt;
  }
  /** The durable recording state (survives a restart), or null. */
  get storedRecording(): RecordingState | null {
    return this.#record.recording;
  }
  /** The recording with an open STT stream on this process, or null. */
  get liveRecording(): LiveRecording | null {
    return this.#recording;
  }
  get channels(): ReadonlySet<ClientChannel> {
    return this.#channels;
  }
  get userIntent(): string | null {
    return this.#userIntent;
  }

  /** What the LLM sees: built from current state on every request. */
  dialogueContext(userIntent: string | null): DialogueContext {
    const all = [...this.#record.historyMessages, ...this.#record.messages];
    const focused = new Set(this.#record.focusedMessageIds);
    return {
      scenarioDescription: this.#record.scenarioDescription,
      userProfile: toProfile(this.#record.userProfile),
      targetProfile: toProfile(this.#record.targetProfile),
      historyMessages: this.#record.historyMessages.map(toContextMessage),
      sessionMessages: this.#record.messages.map(toContextMessage),
      focusedMessages: all.filter((message) => focused.has(message.messageId)).map(toContextMessage),
      userIntent,
      modifications: this.#record.modifications,
    };
  }

  // --- state changes (store first, then memory) --------------------------------------------------

  setStatus(status: SessionStatus): void {
    this.#status = status;
  }

  /** The status to return to when a step ends: recording if a recording is still open, else idle. */
  settleStatus(): void {
    this.#status = this.#recording ? 'recording_message' : 'idle';
  }

  setUserIntent(intent: string | null): void {
    this.#userIntent = intent;
  }

  updateSettings(patch: SessionSettingsPatch): void {
    const now = new Date().toISOString();
    this.#store.update(this.id, patch, now);
    if (patch.scenarioDescription !== undefined) this.#record.scenarioDescription = patch.scenarioDescription;
    if (patch.responseCount !== undefined) this.#record.responseCount = patch.responseCount;
    if (patch.focusedMessageIds !== undefined) this.#record.focusedMessageIds = [...patch.focusedMessageIds];
    if (patch.recording !== undefined) this.#record.recording = patch.recording;
    this.#record.updatedAt = now;
  }

  addModification(modification: string): void {
    const now = new Date().toISOString();
    this.#store.appendModification(this.id, modification, now);
    this.#record.modifications.push(modification);
    this.#record.updatedAt = now;
  }

  /**
   * The id the next message of this kind gets. A number is taken only when its message (or, for a
   * recording, its start) is stored, so a failed write never skips or repeats a number.
   */
  nextMessageId(kind: 'recording' | 'selected_response'): string {
    const prefix = kind === 'recording' ? 'msg' : 'usr';
    return `${prefix}_${String(this.#lastMessageNumber + 1).padStart(3, '0')}`;
  }

  /** Stores a chosen reply (or another message that had no recording). */
  appendMessage(message: StoredMessage): void {
    const now = new Date().toISOString();
    this.#store.appendMessage(this.id, message, now);
    this.#lastMessageNumber++;
    this.#record.messages.push(message);
    this.#record.updatedAt = now;
  }

  /** Stores a recording's message and ends the durable recording, in one transaction. */
  finishRecording(message: StoredMessage): void {
    const now = new Date().toISOString();
    this.#store.finishRecording(this.id, message, now);
    this.#record.recording = null;
    this.#record.messages.push(message);
    this.#record.updatedAt = now;
  }

  /** Begins a recording: durable state first (it takes the message number), then the live stream. */
  beginRecording(messageId: string, sender: string, stream: SttStream, carriedSegments: readonly string[]): LiveRecording {
    const state: RecordingState = { messageId, sender, segments: [...carriedSegments], startedAt: new Date().toISOString() };
    if (this.#record.recording?.messageId !== messageId) {
      this.updateSettings({ recording: state });
      this.#lastMessageNumber++;
    }
    this.#recording = {
      messageId,
      sender,
      stream,
      segments: [...carriedSegments],
      partial: '',
      lastSentText: '',
      audioBytes: 0,
      hasReportedAudioLimit: false,
      failure: null,
      quotaRelease: null,
    };
    this.#status = 'recording_message';
    return this.#recording;
  }

  /** Adds a recognised segment to the recording. Memory keeps it even if the store write fails. */
  addRecordingSegment(recording: LiveRecording, text: string): void {
    recording.segments.push(text);
    recording.partial = '';
    const now = new Date().toISOString();
    this.#store.appendRecordingSegment(this.id, text, now);
    this.#record.recording?.segments.push(text);
    this.#record.updatedAt = now;
  }

  /** Detaches the live recording (message_end) so a new one may start while this one finishes. */
  detachRecording(): LiveRecording | null {
    const recording = this.#recording;
    this.#recording = null;
    recording?.quotaRelease?.();
    if (recording) recording.quotaRelease = null;
    return recording;
  }

  // --- connections (called by SessionManager only) ----------------------------------------------

  attachChannel(channel: ClientChannel): void {
    this.#channels.add(channel);
  }

  detachChannel(channel: ClientChannel): boolean {
    return this.#channels.delete(channel);
  }

  /**
   * Marks the session as in use. Called for every event, audio frames included, so it formats a new
   * timestamp at most once a second (expiry is measured in hours).
   */
  touch(): void {
    const now = Date.now();
    if (now - this.#touchedAtMs < TOUCH_RESOLUTION_MS) return;
    this.#touchedAtMs = now;
    this.#record.updatedAt = new Date(now).toISOString();
  }
}

const TOUCH_RESOLUTION_MS = 1000;

function toContextMessage(message: StoredMessage): ContextMessage {
  return { messageId: message.messageId, sender: message.sender, content: message.content };
}

function toProfile(json: ProfileJson): Profile | null {
  if (json === null) return null;
  const list = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);
  return {
    name: typeof json.name === 'string' ? json.name : null,
    age: typeof json.age === 'number' ? json.age : null,
    gender: typeof json.gender === 'string' ? json.gender : null,
    relations: list(json.relations),
    personalities: list(json.personalities),
    preferences: list(json.preferences),
    taboos: list(json.taboos),
    common_topics: list(json.common_topics),
  };
}
