import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  AudioLimitExceededError,
  InvalidEventDataError,
  NotRecordingError,
  RateLimitedError,
  SessionNotFoundError,
  toVoxgateError,
  type VoxgateError,
} from '../errors.js';
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
import type { ClientChannel } from './channel.js';
import { HeldEvents } from './held-events.js';
import type { OpenedStream, RecordingService } from './recordings.js';
import type { RequestManager } from './request-manager.js';
import type { Session } from './session.js';
import { SessionLanes } from './session-lanes.js';
import type { SessionManager } from './session-manager.js';
import type { ReplyRunner } from './suggestions.js';

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
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Work waiting behind a session's pending event, or held for a connection's session_resume. Audio is
 * bounded by bytes (1 MiB is 32 s of 16 kHz PCM16, far more than a message_end or a reconnect takes);
 * control events come through the connection's rate budget and are bounded by count.
 */
const QUEUE_LIMITS = { maxBytes: 1024 * 1024, maxJobs: 4096 } as const;
/** The key under which a connection's binary audio without a recording is reported (not a session id). */
const NO_TARGET = '';

type Job =
  | { readonly kind: 'event'; readonly channel: ClientChannel; readonly event: ClientEvent; readonly bytes: number }
  | { readonly kind: 'audio'; readonly channel: ClientChannel; readonly pcm: Uint8Array; readonly bytes: number }
  | { readonly kind: 'task'; readonly run: () => Promise<void> | void; readonly bytes: 0 };

/**
 * The protocol's behaviour: one method per client event (protocol.md section 2). Errors thrown by a
 * handler go back to the connection that sent the event, as an `error` event; nothing else changes.
 * Events for one session run one after another (SessionLanes): an event that arrives while an earlier
 * one of the same session is still being processed (message_end waits for the recogniser) waits its turn.
 */
export class Dialogue {
  readonly #options: DialogueOptions;
  /** Which session a connection's binary audio frames belong to: the one it last started or resumed recording. */
  readonly #binaryTarget = new WeakMap<ClientChannel, string>();
  readonly #lanes: SessionLanes<Job>;
  readonly #held = new HeldEvents<Job>(QUEUE_LIMITS);
  /**
   * Per connection, the sessions (NO_TARGET for binary frames without one) whose audio without a recording
   * was already answered with an error in the current recording-less stretch: one error per stretch.
   */
  readonly #reportedNoRecording = new WeakMap<ClientChannel, Set<string>>();
  /** Recordings whose connection left, waiting out the grace period before their recogniser is released. */
  readonly #parkTimers = new Map<string, NodeJS.Timeout>();
  #droppedAudioFrames = 0;

  constructor(options: DialogueOptions) {
    this.#options = options;
    this.#lanes = new SessionLanes<Job>(QUEUE_LIMITS, (sessionId, job) => this.#runJob(sessionId, job));
  }

  /** Audio frames dropped because their session had no recording or the session's queue was full. */
  get droppedAudioFrames(): number {
    return this.#droppedAudioFrames;
  }

  /** Handles one decoded client event; never throws. */
  handleEvent(channel: ClientChannel, event: ClientEvent): void {
    if (!('session_id' in event.data)) {
      this.#dispatch(channel, event, null);
      return;
    }
    const sessionId = event.data.session_id;
    const bytes = event.type === 'audio_stream' ? (event.data.audio_chunk.length * 3) >>> 2 : 0;
    const job: Job = { kind: 'event', channel, event, bytes };
    if (!this.#lanes.submit(sessionId, job)) this.#refuse(sessionId, job);
  }

  /** A binary frame: raw PCM for the session this connection is recording. */
  handleBinaryAudio(channel: ClientChannel, pcm: Uint8Array): void {
    const sessionId = this.#binaryTarget.get(channel) ?? null;
    if (sessionId === null) {
      this.#dropAudio(channel, NO_TARGET, null, pcm.byteLength);
      return;
    }
    if (!this.#lanes.isBusy(sessionId)) {
      this.#appendAudio(channel, sessionId, pcm);
      return;
    }
    // Copy now: uWS reuses the frame's memory once the callback returns.
    const job: Job = { kind: 'audio', channel, pcm: Uint8Array.from(pcm), bytes: pcm.byteLength };
    if (!this.#lanes.submit(sessionId, job)) this.#refuse(sessionId, job);
  }

  handleChannelClosed(channel: ClientChannel): void {
    this.#held.forget(channel);
    for (const session of this.#options.sessions.detachChannel(channel)) {
      // A connection that already named this session (its reconnect) takes it now, its held events first.
      const successor = this.#held.firstHolder(session.id);
      if (successor && this.#options.sessions.claim(session.id, successor) === 'taken') {
        this.#onTaken(successor, session);
        this.#lanes.submitFirst(session.id, this.#held.take(successor, session.id));
        continue;
      }
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
      const park = (): Promise<void> | undefined =>
        session.channels.size > 0 ? undefined : this.#options.recordings.park(session);
      this.#lanes.submitAlways(session.id, { kind: 'task', run: park, bytes: 0 });
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

  /** Runs one job of a session's lane; never rejects. */
  #runJob(sessionId: string, job: Job): Promise<void> | void {
    if (job.kind === 'task') {
      try {
        const result = job.run();
        if (result) return result.catch((err: unknown) => this.#options.logger.error({ err: toVoxgateError(err), sessionId }, 'session task failed'));
      } catch (err) {
        this.#options.logger.error({ err: toVoxgateError(err), sessionId }, 'session task failed');
      }
      return undefined;
    }
    const { channel } = job;
    if (channel.isClosed) return undefined;
    if (job.kind === 'event' && job.event.type === 'session_resume') return this.#dispatch(channel, job.event, sessionId);
    let access: ReturnType<SessionManager['claim']>;
    try {
      access = this.#options.sessions.claim(sessionId, channel);
    } catch (err) {
      this.#reply(channel, sessionId, toVoxgateError(err), job.kind === 'event' ? job.event.type : 'binary audio');
      return undefined;
    }
    if (access === 'busy') {
      this.#hold(channel, sessionId, job);
      return undefined;
    }
    if (access === 'taken') this.#onTaken(channel, this.#options.sessions.attached(sessionId, channel));
    if (job.kind === 'audio') {
      this.#appendAudio(channel, sessionId, job.pcm);
      return undefined;
    }
    return this.#dispatch(channel, job.event, sessionId);
  }

  /** The session had no live connection and `channel` named it first: it is now this connection's. */
  #onTaken(channel: ClientChannel, session: Session): void {
    this.#cancelPark(session.id);
    if (session.storedRecording) this.#binaryTarget.set(channel, session.id);
    session.log.info({ connectionId: channel.id }, 'session taken by the connection that named it first');
  }

  #hold(channel: ClientChannel, sessionId: string, job: Job): void {
    const firstHeld = !this.#held.has(channel, sessionId);
    const result = this.#held.hold(channel, sessionId, job);
    if (firstHeld) {
      channel.log.info({ sessionId }, 'events held: the session is attached to another connection; waiting for session_resume');
    }
    if (result === 'held') return;
    if (job.kind === 'audio' || (job.kind === 'event' && job.event.type === 'audio_stream')) this.#droppedAudioFrames++;
    if (result === 'overflowed') {
      channel.log.warn({ sessionId, limits: QUEUE_LIMITS }, 'held events over the limit; later ones are dropped until session_resume');
      this.#reply(channel, sessionId, new SessionNotFoundError(`session ${sessionId} not found`, { details: `session_id: ${sessionId}` }));
    }
  }

  /** The session's queue is full: audio is dropped with one error per busy stretch; a control event gets its own. */
  #refuse(sessionId: string, job: Job): void {
    if (job.kind === 'task') return;
    const { channel } = job;
    const isAudio = job.kind === 'audio' || job.event.type === 'audio_stream';
    if (isAudio) {
      this.#droppedAudioFrames++;
      channel.log.debug({ sessionId, bytes: job.bytes }, 'audio dropped: the session is busy and its queue is full');
      if (!this.#lanes.firstRefusal(sessionId)) return;
      channel.log.warn({ sessionId, limits: QUEUE_LIMITS }, 'audio dropped: the session is busy and its queue is full');
      this.#reply(
        channel,
        sessionId,
        new AudioLimitExceededError(`session ${sessionId} is busy and ${QUEUE_LIMITS.maxBytes} bytes of audio are already waiting; later audio is discarded`, {
          details: `max_queued_audio_bytes: ${QUEUE_LIMITS.maxBytes}`,
        }),
      );
      return;
    }
    this.#reply(
      channel,
      sessionId,
      new RateLimitedError(`session ${sessionId} is busy and ${QUEUE_LIMITS.maxJobs} events are already waiting; event ${job.event.type} dropped`, {
        details: `max_queued_events: ${QUEUE_LIMITS.maxJobs}`,
      }),
      job.event.type,
    );
  }

  /**
   * Audio for a session without a recording (message_start was refused, or came late): dropped quietly and
   * counted. The app shows every error as a toast, so a connection gets one error per recording-less stretch.
   */
  #dropAudio(channel: ClientChannel, key: string, sessionId: string | null, bytes: number): void {
    this.#droppedAudioFrames++;
    channel.log.debug({ sessionId, bytes }, 'audio dropped: no recording');
    let reported = this.#reportedNoRecording.get(channel);
    if (!reported) {
      reported = new Set();
      this.#reportedNoRecording.set(channel, reported);
    }
    if (reported.has(key)) return;
    reported.add(key);
    const error =
      sessionId === null
        ? new NotRecordingError('binary audio received but this connection has no recording; send message_start first; later audio is dropped quietly')
        : notRecording(sessionId);
    this.#reply(channel, sessionId, error, 'audio');
  }

  /** A recording began: the next recording-less stretch may report dropped audio again. */
  #onRecordingBegun(channel: ClientChannel, session: Session): void {
    this.#reportedNoRecording.get(channel)?.delete(NO_TARGET);
    for (const attached of session.channels) this.#reportedNoRecording.get(attached)?.delete(session.id);
  }

  /** Marks the stretch as reported: the refusal of message_start was this stretch's one error. */
  #markNoRecordingReported(channel: ClientChannel, sessionId: string): void {
    let reported = this.#reportedNoRecording.get(channel);
    if (!reported) {
      reported = new Set();
      this.#reportedNoRecording.set(channel, reported);
    }
    reported.add(sessionId);
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
      historyMessages: data.history_messages ?? [],
      userProfile: (data.user_profile ?? null) as ProfileJson,
      targetProfile: (data.target_profile ?? null) as ProfileJson,
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
    let opened: OpenedStream;
    try {
      opened = this.#options.recordings.open(session, event.data.sender);
    } catch (err) {
      if (!session.liveRecording && !session.storedRecording) this.#markNoRecordingReported(channel, session.id);
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
    this.#options.recordings.begin(session, opened);
    // Only now that the recording began: a refused message_start must leave the running generation alone.
    this.#options.requests.cancel(session.id);
    // What the user typed steered the suggestions for what was said before; a new message starts afresh.
    session.setUserIntent(null);
    this.#binaryTarget.set(channel, session.id);
    this.#onRecordingBegun(channel, session);
    this.#options.sessions.broadcast(session, statusUpdate(session.id, 'recording_message'));
  }

  #audioStream(channel: ClientChannel, event: ClientEventOf<'audio_stream'>): void {
    const session = this.#session(channel, event.data.session_id);
    const chunk = event.data.audio_chunk;
    if (!BASE64.test(chunk) || chunk.length % 4 === 1) {
      throw new InvalidEventDataError('audio_chunk is not valid base64', { details: 'data.audio_chunk: expected base64 of PCM16LE' });
    }
    if (!session.liveRecording && !session.storedRecording) {
      this.#dropAudio(channel, session.id, session.id, (chunk.length * 3) >>> 2);
      return;
    }
    this.#options.recordings.appendAudio(session, Buffer.from(chunk, 'base64'));
  }

  #appendAudio(channel: ClientChannel, sessionId: string, pcm: Uint8Array): void {
    try {
      const session = this.#session(channel, sessionId);
      if (!session.liveRecording && !session.storedRecording) {
        this.#dropAudio(channel, sessionId, sessionId, pcm.byteLength);
        return;
      }
      this.#options.recordings.appendAudio(session, pcm);
    } catch (err) {
      this.#reply(channel, sessionId, toVoxgateError(err), 'binary audio');
    }
  }

  async #messageEnd(channel: ClientChannel, event: ClientEventOf<'message_end'>): Promise<void> {
    const session = this.#session(channel, event.data.session_id);
    if (!session.liveRecording && !session.storedRecording) throw notRecording(session.id);
    session.setStatus('processing_stt');
    this.#options.sessions.broadcast(session, statusUpdate(session.id, 'processing_stt'));
    await this.#finishRecording(session, { autoSuggest: this.#options.autoSuggest });
  }

  /**
   * Ends the open recording into a stored message and tells every attached connection (message_recorded
   * with the recording's sender). Automatic suggestions follow only when asked and something was said.
   */
  async #finishRecording(session: Session, options: { autoSuggest: boolean }): Promise<void> {
    const { sessions, recordings } = this.#options;
    const finished = await recordings.finish(session);
    if (finished.failure) sessions.broadcast(session, errorEvent(session.id, finished.failure));
    try {
      session.finishRecording({
        messageId: finished.messageId,
        sender: finished.sender,
        content: finished.text,
        createdAt: new Date().toISOString(),
        type: 'recording',
      });
    } catch (err) {
      // The transcript is in the log so an operator can recover it; the client learns the save failed.
      session.log.error({ err, messageId: finished.messageId, transcript: finished.text }, 'could not store recorded message');
      session.settleStatus();
      throw err;
    }
    session.settleStatus();
    session.log.info({ messageId: finished.messageId, chars: finished.text.length }, 'message recorded');
    sessions.broadcast(session, messageRecorded(session.id, finished.messageId, finished.text, finished.sender));
    // Nothing new was said: new suggestions would only repeat the old ones. And no older user_corpus:
    // it was forgotten at message_start, and what the user typed before this message was answered.
    if (options.autoSuggest && finished.text.trim() !== '') this.#options.replies.generate(session, null);
  }

  /** user_corpus steers this generation (and its user_modification reruns) until message_start or a chosen reply. */
  #manualGenerate(channel: ClientChannel, event: ClientEventOf<'manual_generate'>): void {
    const session = this.#session(channel, event.data.session_id);
    const focused = event.data.focused_message_ids;
    if (focused && focused.length > 0) session.updateSettings({ focusedMessageIds: focused });
    const intent = event.data.user_corpus?.trim() ?? '';
    session.setUserIntent(intent === '' ? null : intent);
    this.#options.replies.generate(session, session.userIntent);
  }

  #userModification(channel: ClientChannel, event: ClientEventOf<'user_modification'>): void {
    const session = this.#session(channel, event.data.session_id);
    session.addModification(event.data.modification);
    this.#options.replies.generate(session, session.userIntent);
  }

  #userSelectedResponse(channel: ClientChannel, event: ClientEventOf<'user_selected_response'>): void {
    const session = this.#session(channel, event.data.session_id);
    const messageId = session.nextMessageId('selected_response');
    session.appendMessage({
      messageId,
      sender: event.data.sender,
      content: event.data.selected_content,
      createdAt: new Date().toISOString(),
      type: 'selected_response',
    });
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
    // What this connection sent for the session before its resume (the app's reconnect queue) runs next.
    const held = this.#held.take(channel, session.id);
    let reopenError: VoxgateError | null = null;
    if (session.storedRecording) {
      try {
        this.#options.recordings.reopen(session);
      } catch (err) {
        // Audio can still come: the next chunk tries again; the text recognised so far is kept.
        reopenError = toVoxgateError(err);
      }
      this.#binaryTarget.set(channel, session.id);
      this.#onRecordingBegun(channel, session);
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
    session.log.info({ connectionId: channel.id, recording: isRecording, heldEvents: held.length }, 'session resumed');
    if (held.length > 0) this.#lanes.submitFirst(session.id, held);
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
    if (error.code === 'INTERNAL_ERROR' || error.code === 'STORAGE_ERROR') channel.log.error(fields, 'event failed');
    else channel.log.info(fields, 'event rejected');
    channel.send(errorEvent(sessionId, error));
  }
}

function notRecording(sessionId: string): NotRecordingError {
  return new NotRecordingError(`session ${sessionId} has no recording in progress; send message_start first`, {
    details: `session_id: ${sessionId}`,
  });
}

function assertNever(value: never): never {
  throw new Error(`unhandled event ${JSON.stringify(value)}`);
}
