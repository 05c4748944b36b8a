import type { SessionOwnership } from '../cluster/ownership.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Quotas } from '../quotas/quotas.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { LogLimiter } from '../log-limiter.js';
import { SessionNotFoundError, toVoxgateError, type VoxgateError } from '../errors.js';
import type { ClientEvent, ClientEventOf } from '../protocol/client-events.js';
import {
  errorEvent,
  messageHistory,
  messageRecorded,
  profileArchive,
  sessionCreated,
  sessionRestored,
  statusUpdate,
  type HistoryEntry,
  type ProfileJson,
} from '../protocol/server-events.js';
import { estimateItemBytes, estimateMessageBytes } from '../store/record-size.js';
import type { StoredMessage } from '../store/session-store.js';
import type { ClientChannel } from './channel.js';
import { DroppedAudio, notRecording } from './dropped-audio.js';
import type { OpenedStream, RecordingService } from './recordings.js';
import type { RequestManager } from './request-manager.js';
import type { Session } from './session.js';
import type { SessionManager } from './session-manager.js';
import { SessionRouter, type ConnectionJob } from './session-router.js';
import type { ReplyRunner } from './suggestions.js';

/** A connection's refused events are logged at info once per this interval. */
const REJECTION_LOG_INTERVAL_MS = 10_000;

export interface DialogueOptions {
  sessions: SessionManager;
  requests: RequestManager;
  recordings: RecordingService;
  replies: ReplyRunner;
  logger: Logger;
  /** AUTO_SUGGEST: generate suggestions after every recording without being asked. */
  autoSuggest: boolean;
  /** How long a recording whose last connection left keeps its recogniser before it is parked. */
  orphanedRecordingGraceMs: number;
  metrics?: Metrics;
  /** Suggestion generations per minute, per owner and per address. */
  quotas?: Quotas;
  /** Shared sessions (SESSION_STORE=redis): which node serves a session (docs/scaling.md). */
  ownership?: SessionOwnership;
}

/**
 * The protocol's behaviour: one method per client event (protocol.md section 2). Errors thrown by a
 * handler go back to the connection that sent the event, as an `error` event; nothing else changes.
 * Events for one session run one after another (SessionRouter): an event that arrives while an earlier
 * one of the same session is still being processed (message_end waits for the recogniser) waits its turn.
 */
export class Dialogue {
  readonly #options: DialogueOptions;
  /** Which session a connection's binary audio frames belong to: the one it last started or resumed recording. */
  readonly #binaryTarget = new WeakMap<ClientChannel, string>();
  readonly #droppedAudio = new DroppedAudio();
  readonly #router: SessionRouter;
  /** Recordings whose connection left, waiting out the grace period before their recogniser is released. */
  readonly #parkTimers = new Map<string, NodeJS.Timeout>();
  /** Per connection: refused events are logged at info at most once per interval (the rest at debug). */
  readonly #rejectionLog = new WeakMap<ClientChannel, LogLimiter>();

  constructor(options: DialogueOptions) {
    this.#options = options;
    this.#router = new SessionRouter({
      sessions: options.sessions,
      droppedAudio: this.#droppedAudio,
      logger: options.logger,
      run: (sessionId, job) => this.#runJob(sessionId, job),
      reply: (channel, sessionId, error, eventType) => this.#reply(channel, sessionId, error, eventType),
      onTaken: (channel, session) => this.#onTaken(channel, session),
      ...(options.ownership ? { ownership: options.ownership } : {}),
    });
  }

  /**
   * Another node takes the session (a handover request, or this node lost its lease): in the session's
   * lane, after the event being handled, the open recording is parked when `park` (what the recogniser
   * still held is stored, as after a restart), then the session is evicted (its connections told `reason`).
   */
  handOver(sessionId: string, reason: VoxgateError, options: { park: boolean }): void {
    this.#cancelPark(sessionId);
    this.#router.submitTask(sessionId, async () => {
      const session = this.#options.sessions.held(sessionId);
      if (session === null) {
        this.#options.ownership?.release(sessionId);
        return;
      }
      // A lost lease cannot park: its writes would be refused (the new owner has what was acknowledged).
      if (!options.park || session.liveRecording === null) {
        this.#options.sessions.evict(session, reason);
        return;
      }
      try {
        await this.#options.recordings.park(session);
      } finally {
        this.#options.sessions.evict(session, reason);
      }
    });
  }

  /** Audio frames dropped because their session had no recording or the session's queue was full. */
  get droppedAudioFrames(): number {
    return this.#droppedAudio.frames;
  }

  /** Handles one decoded client event; never throws. */
  handleEvent(channel: ClientChannel, event: ClientEvent): void {
    if (!('session_id' in event.data)) {
      this.#dispatch(channel, event, null);
      return;
    }
    const sessionId = event.data.session_id;
    const bytes = event.type === 'audio_stream' ? (event.data.audio_chunk.length * 3) >>> 2 : 0;
    this.#router.submit(sessionId, { kind: 'event', channel, event, bytes });
  }

  /** A binary frame: raw PCM for the session this connection is recording. */
  handleBinaryAudio(channel: ClientChannel, pcm: Uint8Array): void {
    const sessionId = this.#binaryTarget.get(channel) ?? null;
    if (sessionId === null) {
      this.#dropAudio(channel, null, pcm.byteLength);
      return;
    }
    if (!this.#router.isBusy(sessionId)) {
      this.#appendAudio(channel, sessionId, pcm);
      return;
    }
    // Copy now: uWS reuses the frame's memory once the callback returns.
    this.#router.submit(sessionId, { kind: 'audio', channel, pcm: Uint8Array.from(pcm), bytes: pcm.byteLength });
  }

  handleChannelClosed(channel: ClientChannel): void {
    // A connection that already named a session it leaves (its reconnect) takes it now, held events first.
    for (const session of this.#router.channelClosed(channel, this.#options.sessions.detachChannel(channel))) {
      if (session.liveRecording) this.#parkLater(session);
    }
  }

  /** Stops the grace timers (shutdown). */
  close(): void {
    for (const timer of this.#parkTimers.values()) clearTimeout(timer);
    this.#parkTimers.clear();
  }

  /**
   * A recording nobody sends to would hold a recogniser (and admission capacity) until the session
   * expires: after a grace period it is parked (text kept, recogniser freed) unless the client is back.
   */
  #parkLater(session: Session): void {
    if (this.#parkTimers.has(session.id)) return;
    const timer = setTimeout(() => {
      this.#parkTimers.delete(session.id);
      if (session.channels.size > 0) return;
      this.#router.submitTask(session.id, () => (session.channels.size > 0 ? undefined : this.#options.recordings.park(session)));
    }, this.#options.orphanedRecordingGraceMs);
    timer.unref();
    this.#parkTimers.set(session.id, timer);
  }

  #cancelPark(sessionId: string): void {
    const timer = this.#parkTimers.get(sessionId);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#parkTimers.delete(sessionId);
  }

  /** Runs a connection's job once the router let it through; never rejects. */
  #runJob(sessionId: string, job: ConnectionJob): Promise<void> | void {
    if (job.kind === 'audio') {
      this.#appendAudio(job.channel, sessionId, job.pcm);
      return undefined;
    }
    return this.#dispatch(job.channel, job.event, sessionId);
  }

  /** The session had no live connection and `channel` named it first: it is now this connection's. */
  #onTaken(channel: ClientChannel, session: Session): void {
    this.#cancelPark(session.id);
    if (session.storedRecording) this.#binaryTarget.set(channel, session.id);
    session.log.info({ connectionId: channel.id }, 'session taken by the connection that named it first');
  }

  /** Audio without a recording: dropped and counted; the first of its stretch is answered. */
  #dropAudio(channel: ClientChannel, sessionId: string | null, bytes: number): void {
    const error = this.#droppedAudio.drop(channel, sessionId, bytes);
    if (error) this.#reply(channel, sessionId, error, 'audio');
  }

  #dispatch(channel: ClientChannel, event: ClientEvent, sessionId: string | null): Promise<void> | undefined {
    try {
      const result = this.#run(channel, event);
      if (result) return result.catch((err: unknown) => this.#reply(channel, sessionId, toVoxgateError(err), event.type));
    } catch (err) {
      this.#reply(channel, sessionId, toVoxgateError(err), event.type);
    }
    return undefined;
  }

  #run(channel: ClientChannel, event: ClientEvent): Promise<void> | void {
    switch (event.type) {
      case 'conversation_start':
        return this.#conversationStart(channel, event);
      case 'message_start':
        return this.#messageStart(channel, event);
      case 'audio_stream':
        return this.#audioStream(channel, event);
      case 'message_end':
        return this.#messageEnd(channel, event);
      case 'manual_generate':
        return this.#manualGenerate(channel, event);
      case 'user_modification':
        return this.#userModification(channel, event);
      case 'user_selected_response':
        return this.#userSelectedResponse(channel, event);
      case 'scenario_supplement':
        return this.#scenarioSupplement(channel, event);
      case 'response_count_update':
        return this.#responseCountUpdate(channel, event);
      case 'conversation_end':
        return this.#conversationEnd(channel, event);
      case 'session_resume':
        return this.#sessionResume(channel, event);
      case 'get_message_history':
        return this.#getMessageHistory(channel, event);
      default:
        return assertNever(event);
    }
  }

  #conversationStart(channel: ClientChannel, event: ClientEventOf<'conversation_start'>): void {
    const { data } = event;
    const session = this.#options.sessions.create(channel, {
      responseCount: data.response_count,
      scenarioDescription: data.scenario_description ?? null,
      historyMessages: data.history_messages,
      userProfile: data.user_profile as ProfileJson,
      targetProfile: data.target_profile as ProfileJson,
      adjustments: data.adjustments,
    });
    channel.send(sessionCreated(session.id));
  }

  /**
   * Opens the STT stream first: if that is refused, nothing changed (the running generation goes on, an
   * open recording stays open). A recording still open (its message_end was lost with a dead socket) is
   * finished first, with its message_recorded but no automatic suggestions; then the new one begins.
   */
  #messageStart(channel: ClientChannel, event: ClientEventOf<'message_start'>): Promise<void> | void {
    const session = this.#session(channel, event.data.session_id);
    // A message_start during a recording replaces it: only a new one is checked against the quota.
    if (!session.liveRecording) this.#options.quotas?.assertRecording(channel);
    let opened: OpenedStream;
    try {
      // A recording becomes a message: room for it is asked first (its transcript is never refused later).
      this.#options.sessions.assertRoomToGrow(estimateMessageBytes({ messageId: '', sender: event.data.sender, content: '', createdAt: '', type: 'recording' }));
      opened = this.#options.recordings.open(session, event.data.sender, event.data);
    } catch (err) {
      if (!session.liveRecording && !session.storedRecording) this.#droppedAudio.markReported(channel, session.id);
      throw err;
    }
    if (!session.liveRecording && !session.storedRecording) {
      this.#beginRecording(channel, session, opened);
      return undefined;
    }
    return this.#finishThenBegin(channel, session, opened);
  }

  async #finishThenBegin(channel: ClientChannel, session: Session, opened: OpenedStream): Promise<void> {
    session.log.info({ messageId: session.liveRecording?.messageId ?? session.storedRecording?.messageId }, 'message_start during a recording: finishing it first');
    try {
      await this.#finishRecording(session, { autoSuggest: false });
    } catch (err) {
      opened.stream.abort();
      throw err;
    }
    this.#beginRecording(channel, session, opened);
  }

  #beginRecording(channel: ClientChannel, session: Session, opened: OpenedStream): void {
    const recording = this.#options.recordings.begin(session, opened);
    if (this.#options.quotas) recording.quotaRelease = this.#options.quotas.countRecording(channel);
    // Only now that the recording began: a refused message_start must leave the running generation alone.
    this.#options.requests.cancel(session.id);
    // What the user typed steered the suggestions for what was said before; a new message starts afresh.
    session.setUserIntent(null);
    this.#binaryTarget.set(channel, session.id);
    this.#droppedAudio.recordingBegun(channel, session);
    this.#options.sessions.broadcast(session, statusUpdate(session.id, 'recording_message'));
  }

  #audioStream(channel: ClientChannel, event: ClientEventOf<'audio_stream'>): void {
    const chunk = event.data.audio_chunk;
    const session = this.#audioSession(channel, event.data.session_id, (chunk.length * 3) >>> 2);
    if (!session) return;
    // audio_chunk is valid base64: decode checked it (client-events.ts).
    if (!session.liveRecording && !session.storedRecording) {
      this.#dropAudio(channel, session.id, (chunk.length * 3) >>> 2);
      return;
    }
    this.#options.recordings.appendAudio(session, Buffer.from(chunk, 'base64'), event.data);
  }

  #appendAudio(channel: ClientChannel, sessionId: string, pcm: Uint8Array): void {
    try {
      const session = this.#audioSession(channel, sessionId, pcm.byteLength);
      if (!session) return;
      if (!session.liveRecording && !session.storedRecording) {
        this.#dropAudio(channel, sessionId, pcm.byteLength);
        return;
      }
      this.#options.recordings.appendAudio(session, pcm);
    } catch (err) {
      this.#reply(channel, sessionId, toVoxgateError(err), 'binary audio');
    }
  }

  /** The session audio is for; null (audio dropped, reported once) when there is no such session. */
  #audioSession(channel: ClientChannel, sessionId: string, bytes: number): Session | null {
    try {
      return this.#session(channel, sessionId);
    } catch (err) {
      if (!(err instanceof SessionNotFoundError)) throw err;
      const error = this.#droppedAudio.dropForUnknownSession(channel, sessionId, bytes);
      if (error) this.#reply(channel, sessionId, error, 'audio');
      return null;
    }
  }

  async #messageEnd(channel: ClientChannel, event: ClientEventOf<'message_end'>): Promise<void> {
    const session = this.#session(channel, event.data.session_id);
    if (!session.liveRecording && !session.storedRecording) throw notRecording(session.id);
    session.setStatus('processing_stt');
    this.#options.sessions.broadcast(session, statusUpdate(session.id, 'processing_stt'));
    await this.#finishRecording(session, { autoSuggest: this.#options.autoSuggest, channel });
  }

  /**
   * Ends the open recording into a stored message and tells every attached connection (message_recorded
   * with the recording's sender). Automatic suggestions follow only when asked and something was said.
   */
  /** `channel`: the connection whose message_end it was, charged for the automatic generation. */
  async #finishRecording(session: Session, options: { autoSuggest: boolean; channel?: ClientChannel }): Promise<void> {
    const { sessions, recordings } = this.#options;
    const finishStartedAt = performance.now();
    const finished = await recordings.finish(session);
    if (finished.failure) sessions.broadcast(session, errorEvent(session.id, finished.failure));
    const message: StoredMessage = {
      messageId: finished.messageId,
      sender: finished.sender,
      content: finished.text,
      createdAt: new Date().toISOString(),
      type: 'recording',
    };
    try {
      session.finishRecording(message);
    } catch (err) {
      // The transcript is in the log so an operator can recover it; the client learns the save failed.
      session.log.error({ err, messageId: finished.messageId, transcript: finished.text }, 'could not store recorded message');
      session.settleStatus();
      throw err;
    }
    session.settleStatus();
    // Counted, never refused: it is what the user said.
    sessions.grew(session, estimateMessageBytes(message));
    session.log.info({ messageId: finished.messageId, chars: finished.text.length }, 'message recorded');
    sessions.broadcast(session, messageRecorded(session.id, finished.messageId, finished.text, finished.sender));
    this.#options.metrics?.recordingsFinished.inc();
    this.#options.metrics?.finalTextLatency.observe((performance.now() - finishStartedAt) / 1000);
    // Nothing new was said: new suggestions would only repeat the old ones. And no older user_corpus:
    // it was forgotten at message_start, and what the user typed before this message was answered.
    if (options.autoSuggest && finished.text.trim() !== '') {
      try {
        if (options.channel) this.#options.quotas?.takeGeneration(options.channel);
      } catch (err) {
        // The recording is stored and announced; only the automatic suggestions are refused.
        this.#reply(options.channel!, session.id, toVoxgateError(err), 'message_end');
        return;
      }
      this.#options.replies.generate(session, null);
    }
  }

  /** user_corpus steers this generation (and its user_modification reruns) until message_start or a chosen reply. */
  #manualGenerate(channel: ClientChannel, event: ClientEventOf<'manual_generate'>): void {
    const session = this.#session(channel, event.data.session_id);
    this.#options.quotas?.takeGeneration(channel);
    const focused = event.data.focused_message_ids;
    if (focused && focused.length > 0) session.updateSettings({ focusedMessageIds: focused });
    const intent = event.data.user_corpus?.trim() ?? '';
    session.setUserIntent(intent === '' ? null : intent);
    this.#options.replies.generate(session, session.userIntent);
  }

  #userModification(channel: ClientChannel, event: ClientEventOf<'user_modification'>): void {
    const session = this.#session(channel, event.data.session_id);
    const bytes = estimateItemBytes(event.data.modification);
    this.#options.sessions.assertRoomToGrow(bytes);
    this.#options.quotas?.takeGeneration(channel);
    session.addModification(event.data.modification);
    this.#options.sessions.grew(session, bytes);
    this.#options.replies.generate(session, session.userIntent);
  }

  #userSelectedResponse(channel: ClientChannel, event: ClientEventOf<'user_selected_response'>): void {
    const session = this.#session(channel, event.data.session_id);
    const message: StoredMessage = {
      messageId: session.nextMessageId('selected_response'),
      sender: event.data.sender,
      content: event.data.selected_content,
      createdAt: new Date().toISOString(),
      type: 'selected_response',
    };
    const bytes = estimateMessageBytes(message);
    this.#options.sessions.assertRoomToGrow(bytes);
    session.appendMessage(message);
    this.#options.sessions.grew(session, bytes);
    const { messageId } = message;
    // The reply is said: what the user typed to get it must not steer later suggestions.
    session.setUserIntent(null);
    // null, not the text: the app adds the chosen reply itself and would show it twice.
    this.#options.sessions.broadcast(session, messageRecorded(session.id, messageId, null, event.data.sender));
    this.#options.replies.predict(session, event.data.selected_content);
  }

  #scenarioSupplement(channel: ClientChannel, event: ClientEventOf<'scenario_supplement'>): void {
    this.#session(channel, event.data.session_id).updateSettings({ scenarioDescription: event.data.supplement });
  }

  #responseCountUpdate(channel: ClientChannel, event: ClientEventOf<'response_count_update'>): void {
    this.#session(channel, event.data.session_id).updateSettings({ responseCount: event.data.response_count });
  }

  #conversationEnd(channel: ClientChannel, event: ClientEventOf<'conversation_end'>): void {
    const { sessions } = this.#options;
    const session = this.#session(channel, event.data.session_id);
    const attached = [...session.channels];
    // Deleted first: if the store fails, the client gets an error and the session is still there.
    sessions.end(session, 'conversation_end');
    this.#cancelPark(session.id);
    const archive = profileArchive(session.id, session.userProfile, session.targetProfile);
    for (const other of attached) {
      if (this.#binaryTarget.get(other) === session.id) this.#binaryTarget.delete(other);
      other.send(archive);
    }
  }

  #sessionResume(channel: ClientChannel, event: ClientEventOf<'session_resume'>): void {
    const session = this.#options.sessions.resume(event.data.session_id, channel);
    this.#cancelPark(session.id);

    let reopenError: VoxgateError | null = null;
    if (session.storedRecording) {
      try {
        const reopened = this.#options.recordings.reopen(session);
        if (reopened && this.#options.quotas) reopened.quotaRelease = this.#options.quotas.countRecording(channel);
      } catch (err) {
        // Audio can still come: the next chunk tries again; the text recognised so far is kept.
        reopenError = toVoxgateError(err);
      }
      this.#binaryTarget.set(channel, session.id);
      this.#droppedAudio.recordingBegun(channel, session);
    }
    const isRecording = session.storedRecording !== null;
    channel.send(
      sessionRestored({
        session_id: session.id,
        status: isRecording ? 'recording_message' : 'idle',
        // Session messages only (recordings and chosen replies), as the replaced backend counted.
        message_count: session.messages.length,
        scenario_description: session.scenarioDescription,
        response_count: session.responseCount,
        has_modifications: session.modifications.length > 0,
        restored_at: new Date().toISOString(),
      }),
    );
    if (isRecording) channel.send(statusUpdate(session.id, 'recording_message'));
    if (reopenError) channel.send(errorEvent(session.id, reopenError));
    // What this connection sent for the session before its resume (the app's reconnect queue) runs next.
    const heldEvents = this.#router.releaseHeld(channel, session.id);
    session.log.info({ connectionId: channel.id, recording: isRecording, heldEvents }, 'session resumed');
    this.#options.metrics?.sessionsResumed.inc();
  }

  #getMessageHistory(channel: ClientChannel, event: ClientEventOf<'get_message_history'>): void {
    const session = this.#session(channel, event.data.session_id);
    const entries: HistoryEntry[] = [...session.historyMessages, ...session.messages].map((message) => ({
      message_id: message.messageId,
      sender: message.sender,
      content: message.content,
      created_at: message.createdAt,
      message_type: message.type,
    }));
    channel.send(messageHistory(session.id, entries, randomUUID()));
  }

  #session(channel: ClientChannel, sessionId: string): Session {
    return this.#options.sessions.attached(sessionId, channel);
  }

  #reply(channel: ClientChannel, sessionId: string | null, error: VoxgateError, eventType = 'event'): void {
    const fields = { err: error, code: error.code, sessionId, eventType, connectionId: channel.id };
    if (error.code === 'INTERNAL_ERROR' || error.code === 'STORAGE_ERROR') {
      channel.log.error(fields, 'event failed');
    } else {
      // The reply came out of the connection's event budget, the log line must not: a client sending
      // refused events (within its 50/s) would otherwise decide the log's size.
      const suppressed = this.#rejectionLogOf(channel).take();
      if (suppressed !== null) channel.log.info({ ...fields, suppressed }, 'event rejected');
      else channel.log.debug(fields, 'event rejected');
    }
    channel.send(errorEvent(sessionId, error));
  }

  #rejectionLogOf(channel: ClientChannel): LogLimiter {
    let limiter = this.#rejectionLog.get(channel);
    if (!limiter) {
      limiter = new LogLimiter({ intervalMs: REJECTION_LOG_INTERVAL_MS, linesPerInterval: 1 });
      this.#rejectionLog.set(channel, limiter);
    }
    return limiter;
  }
}

function assertNever(value: never): never {
  throw new Error(`unhandled event ${JSON.stringify(value)}`);
}
