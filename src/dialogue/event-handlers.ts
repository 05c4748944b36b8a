import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  InvalidEventDataError,
  NotRecordingError,
  RecordingInProgressError,
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
import type { RecordingService } from './recordings.js';
import type { RequestManager } from './request-manager.js';
import type { Session } from './session.js';
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
 * The protocol's behaviour: one method per client event (protocol.md section 2). Errors thrown by a
 * handler go back to the connection that sent the event, as an `error` event; nothing else changes.
 * Events for one session run one after another: an event that arrives while an earlier one of the same
 * session is still being processed (message_end waits for the recogniser) waits its turn.
 */
export class Dialogue {
  readonly #options: DialogueOptions;
  /** Which session a connection's binary audio frames belong to: the one it last started or resumed recording. */
  readonly #binaryTarget = new WeakMap<ClientChannel, string>();
  readonly #pendingBySession = new Map<string, Promise<void>>();
  /** Recordings whose connection left, waiting out the grace period before their recogniser is released. */
  readonly #parkTimers = new Map<string, NodeJS.Timeout>();

  constructor(options: DialogueOptions) {
    this.#options = options;
  }

  /** Handles one decoded client event; never throws. */
  handleEvent(channel: ClientChannel, event: ClientEvent): void {
    const sessionId = 'session_id' in event.data ? event.data.session_id : null;
    const pending = sessionId === null ? undefined : this.#pendingBySession.get(sessionId);
    if (pending) {
      this.#track(sessionId!, pending.then(() => this.#dispatch(channel, event, sessionId)));
      return;
    }
    const result = this.#dispatch(channel, event, sessionId);
    if (result && sessionId !== null) this.#track(sessionId, result);
  }

  /** A binary frame: raw PCM for the session this connection is recording. */
  handleBinaryAudio(channel: ClientChannel, pcm: Uint8Array): void {
    const sessionId = this.#binaryTarget.get(channel) ?? null;
    if (sessionId === null) {
      this.#reply(channel, null, new NotRecordingError('binary audio received but this connection has no recording; send message_start first'));
      return;
    }
    const pending = this.#pendingBySession.get(sessionId);
    if (pending) {
      // Copy now: uWS reuses the frame's memory once the callback returns.
      const copy = Uint8Array.from(pcm);
      this.#track(sessionId, pending.then(() => this.#appendAudio(channel, sessionId, copy)));
      return;
    }
    this.#appendAudio(channel, sessionId, pcm);
  }

  handleChannelClosed(channel: ClientChannel): void {
    for (const session of this.#options.sessions.detachChannel(channel)) {
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
      const pending = this.#pendingBySession.get(session.id) ?? Promise.resolve();
      this.#track(session.id, pending.then(() => (session.channels.size > 0 ? undefined : this.#options.recordings.park(session))));
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

  #track(sessionId: string, work: Promise<void>): void {
    const settled = work.finally(() => {
      if (this.#pendingBySession.get(sessionId) === settled) this.#pendingBySession.delete(sessionId);
    });
    this.#pendingBySession.set(sessionId, settled);
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

  #messageStart(channel: ClientChannel, event: ClientEventOf<'message_start'>): void {
    const session = this.#session(channel, event.data.session_id);
    if (session.liveRecording || session.storedRecording) {
      throw new RecordingInProgressError('a recording is already in progress for this session; send message_end first', {
        details: `message_id: ${session.storedRecording?.messageId ?? session.liveRecording?.messageId}`,
      });
    }
    this.#options.requests.cancel(session.id);
    this.#options.recordings.start(session, event.data.sender);
    this.#binaryTarget.set(channel, session.id);
    this.#options.sessions.broadcast(session, statusUpdate(session.id, 'recording_message'));
  }

  #audioStream(channel: ClientChannel, event: ClientEventOf<'audio_stream'>): void {
    const session = this.#session(channel, event.data.session_id);
    const chunk = event.data.audio_chunk;
    if (!BASE64.test(chunk) || chunk.length % 4 === 1) {
      throw new InvalidEventDataError('audio_chunk is not valid base64', { details: 'data.audio_chunk: expected base64 of PCM16LE' });
    }
    this.#options.recordings.appendAudio(session, Buffer.from(chunk, 'base64'));
  }

  #appendAudio(channel: ClientChannel, sessionId: string, pcm: Uint8Array): void {
    try {
      this.#options.recordings.appendAudio(this.#session(channel, sessionId), pcm);
    } catch (err) {
      this.#reply(channel, sessionId, toVoxgateError(err), 'binary audio');
    }
  }

  async #messageEnd(channel: ClientChannel, event: ClientEventOf<'message_end'>): Promise<void> {
    const { sessions, recordings } = this.#options;
    const session = this.#session(channel, event.data.session_id);
    if (!session.liveRecording && !session.storedRecording) {
      throw new NotRecordingError(`session ${session.id} has no recording in progress; send message_start first`, {
        details: `session_id: ${session.id}`,
      });
    }
    session.setStatus('processing_stt');
    sessions.broadcast(session, statusUpdate(session.id, 'processing_stt'));
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
    sessions.broadcast(session, messageRecorded(session.id, finished.messageId, finished.text));
    if (this.#options.autoSuggest) this.#options.replies.generate(session, session.userIntent);
  }

  #manualGenerate(channel: ClientChannel, event: ClientEventOf<'manual_generate'>): void {
    const session = this.#session(channel, event.data.session_id);
    const focused = event.data.focused_message_ids;
    if (focused && focused.length > 0) session.updateSettings({ focusedMessageIds: focused });
    if (event.data.user_corpus !== undefined) {
      const intent = event.data.user_corpus?.trim() ?? '';
      session.setUserIntent(intent === '' ? null : intent);
    }
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
    // null, not the text: the app adds the chosen reply itself and would show it twice.
    this.#options.sessions.broadcast(session, messageRecorded(session.id, messageId, null));
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
        this.#options.recordings.reopen(session);
      } catch (err) {
        // Audio can still come: the next chunk tries again; the text recognised so far is kept.
        reopenError = toVoxgateError(err);
      }
      this.#binaryTarget.set(channel, session.id);
    }
    const isRecording = session.storedRecording !== null;
    channel.send(
      sessionRestored({
        session_id: session.id,
        status: isRecording ? 'recording_message' : 'idle',
        message_count: session.historyMessages.length + session.messages.length,
        scenario_description: session.scenarioDescription,
        response_count: session.responseCount,
        has_modifications: session.modifications.length > 0,
        restored_at: new Date().toISOString(),
      }),
    );
    if (isRecording) channel.send(statusUpdate(session.id, 'recording_message'));
    if (reopenError) channel.send(errorEvent(session.id, reopenError));
    session.log.info({ connectionId: channel.id, recording: isRecording }, 'session resumed');
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

function assertNever(value: never): never {
  throw new Error(`unhandled event ${JSON.stringify(value)}`);
}
