import type { VoxgateError } from '../errors.js';
import type { OpinionPrediction } from '../llm/engine.js';

// Every event the server sends is built here, by a constructor that sets every field of its shape
// (absent optional values are `null`, never missing): the app reads fields without checking for them.

export type SessionStatus = 'idle' | 'recording_message' | 'processing_stt' | 'generating_response';

/** The app shows these labels; they are part of what the replaced backend sent. */
export const STATUS_LABELS: Record<SessionStatus, string | null> = {
  idle: null,
  recording_message: '开始录制消息',
  processing_stt: '处理语音转文字',
  generating_response: '生成回答建议',
};

export type MessageType = 'history' | 'recording' | 'selected_response';

export interface HistoryEntry {
  message_id: string;
  sender: string;
  content: string;
  created_at: string;
  message_type: MessageType;
}

/** A profile exactly as the client sent it (after validation), or null. */
export type ProfileJson = Record<string, unknown> | null;

export interface SessionRestoredData {
  session_id: string;
  status: 'idle' | 'recording_message';
  message_count: number;
  scenario_description: string | null;
  response_count: number;
  has_modifications: boolean;
  restored_at: string;
}

export type ServerEvent =
  | { type: 'session_created'; data: { session_id: string } }
  | { type: 'status_update'; data: { session_id: string; status: SessionStatus; message: string | null } }
  | { type: 'message_recorded'; data: { session_id: string; message_id: string; message_content: string | null; sender: string } }
  | { type: 'transcript_partial'; data: { session_id: string; message_id: string; text: string } }
  | { type: 'llm_response_delta'; data: { session_id: string; request_id: string; index: number; delta: string } }
  | { type: 'llm_response'; data: { session_id: string; suggestions: string[]; request_id: string } }
  | { type: 'opinion_prediction_response'; data: { session_id: string; prediction: OpinionPrediction; request_id: string } }
  | { type: 'session_restored'; data: SessionRestoredData }
  | { type: 'profile_archive'; data: { session_id: string; user_profile: ProfileJson; target_profile: ProfileJson } }
  | {
      type: 'message_history_response';
      data: { session_id: string; messages: HistoryEntry[]; total_count: number; request_id: string };
    }
  | {
      type: 'error';
      data: { session_id: string | null; error_code: string; message: string; details: string | null };
    };

export type ServerEventType = ServerEvent['type'];

export const sessionCreated = (sessionId: string): ServerEvent => ({
  type: 'session_created',
  data: { session_id: sessionId },
});

export const statusUpdate = (sessionId: string, status: SessionStatus): ServerEvent => ({
  type: 'status_update',
  data: { session_id: sessionId, status, message: STATUS_LABELS[status] },
});

/**
 * `sender` is voxgate's addition: the app reads it when present; without it the app guesses the speaker
 * from a queue of its own message_starts, which one refused message_start puts out of step for good.
 */
export const messageRecorded = (sessionId: string, messageId: string, content: string | null, sender: string): ServerEvent => ({
  type: 'message_recorded',
  data: { session_id: sessionId, message_id: messageId, message_content: content, sender },
});

export const transcriptPartial = (sessionId: string, messageId: string, text: string): ServerEvent => ({
  type: 'transcript_partial',
  data: { session_id: sessionId, message_id: messageId, text },
});

export const llmResponseDelta = (sessionId: string, requestId: string, index: number, delta: string): ServerEvent => ({
  type: 'llm_response_delta',
  data: { session_id: sessionId, request_id: requestId, index, delta },
});

export const llmResponse = (sessionId: string, suggestions: string[], requestId: string): ServerEvent => ({
  type: 'llm_response',
  data: { session_id: sessionId, suggestions, request_id: requestId },
});

export const opinionPrediction = (sessionId: string, prediction: OpinionPrediction, requestId: string): ServerEvent => ({
  type: 'opinion_prediction_response',
  data: {
    session_id: sessionId,
    prediction: { tendency: prediction.tendency, mood: prediction.mood, tone: prediction.tone },
    request_id: requestId,
  },
});

export const sessionRestored = (data: SessionRestoredData): ServerEvent => ({
  type: 'session_restored',
  data: {
    session_id: data.session_id,
    status: data.status,
    message_count: data.message_count,
    scenario_description: data.scenario_description,
    response_count: data.response_count,
    has_modifications: data.has_modifications,
    restored_at: data.restored_at,
  },
});

export const profileArchive = (sessionId: string, userProfile: ProfileJson, targetProfile: ProfileJson): ServerEvent => ({
  type: 'profile_archive',
  data: { session_id: sessionId, user_profile: userProfile, target_profile: targetProfile },
});

export const messageHistory = (sessionId: string, messages: HistoryEntry[], requestId: string): ServerEvent => ({
  type: 'message_history_response',
  data: { session_id: sessionId, messages, total_count: messages.length, request_id: requestId },
});

/**
 * `message` is the code's short Chinese sentence (the app shows it as `错误: <message>`); the English
 * explanation goes to `details`, followed by the error's own details so nothing is lost, after `context`
 * (e.g. `request_id: …`) so a client can tell what failed.
 */
export const errorEvent = (sessionId: string | null, error: VoxgateError, context: string | null = null): ServerEvent => ({
  type: 'error',
  data: { session_id: sessionId, error_code: error.code, message: error.userMessage, details: errorDetails(error, context) },
});

function errorDetails(error: VoxgateError, context: string | null): string {
  const own = error.details === null ? error.message : `${error.message} (${error.details})`;
  return context === null ? own : `${context}; ${own}`;
}
