import { z } from 'zod';
import { normaliseConversationStart } from './conversation-start.js';
import { LIMITS } from './limits.js';

// The events the app (and any other client) sends, one zod schema each. Field names are the app's
// contract (see docs/protocol.md). Unknown fields inside `data` are accepted and dropped: the app sends
// extras such as `format` or `sample_rate` on audio_stream.

export { LIMITS } from './limits.js';
export type { ConversationStartInput, HistoryMessageInput, ProfileInput } from './conversation-start.js';

const sessionId = z.string().min(1).max(LIMITS.sessionIdChars);
const responseCount = z.int().min(1).max(5);

// Only response_count can make a conversation_start fail: everything optional is made to fit and each
// change is listed in `adjustments` (conversation-start.ts says why and how).
export const ConversationStartData = z
  .object({
    response_count: responseCount,
    scenario_description: z.unknown().optional(),
    history_messages: z.unknown().optional(),
    user_profile: z.unknown().optional(),
    target_profile: z.unknown().optional(),
  })
  .transform(normaliseConversationStart);

// Optional audio format declarations (docs/protocol.md, "Audio formats"): an extension on message_start,
// the app's extras on audio_stream. Any value passes here; src/stt/audio-format.ts checks them, so a
// format voxgate cannot decode is AUDIO_FORMAT_UNSUPPORTED once per recording, not an error per chunk.
const audioFormatFields = {
  format: z.unknown().optional(),
  sample_rate: z.unknown().optional(),
  channels: z.unknown().optional(),
};
export const MessageStartData = z.object({ session_id: sessionId, sender: z.string().min(1).max(LIMITS.senderChars), ...audioFormatFields });
// Checked here, at the edge, not by the dialogue: a chunk that is not base64 is malformed input, so its
// error reply and log line come out of the connection's rate budget like any other bad frame's (audio
// itself is not rate-limited, and an error per chunk would be unbounded).
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const audioChunk = z.string().refine((chunk) => chunk.length % 4 !== 1 && BASE64.test(chunk), { error: 'expected base64 of PCM16LE' });
export const AudioStreamData = z.object({ session_id: sessionId, audio_chunk: audioChunk, ...audioFormatFields });
export const SessionOnlyData = z.object({ session_id: sessionId });
export const ManualGenerateData = z.object({
  session_id: sessionId,
  focused_message_ids: z.array(z.string().max(LIMITS.sessionIdChars)).max(LIMITS.focusedMessageIds).nullish(),
  user_corpus: z.string().max(LIMITS.userCorpusChars).nullish(),
});
export const UserModificationData = z.object({
  session_id: sessionId,
  modification: z.string().min(1).max(LIMITS.modificationChars),
});
export const UserSelectedResponseData = z.object({
  session_id: sessionId,
  selected_content: z.string().min(1).max(LIMITS.messageChars),
  sender: z.string().min(1).max(LIMITS.senderChars),
});
export const ScenarioSupplementData = z.object({
  session_id: sessionId,
  supplement: z.string().max(LIMITS.scenarioChars),
});
export const ResponseCountUpdateData = z.object({ session_id: sessionId, response_count: responseCount });

/** Event type -> schema of its `data`. The single source of truth for what a client may send. */
export const CLIENT_EVENT_DATA = {
  conversation_start: ConversationStartData,
  message_start: MessageStartData,
  audio_stream: AudioStreamData,
  message_end: SessionOnlyData,
  manual_generate: ManualGenerateData,
  user_modification: UserModificationData,
  user_selected_response: UserSelectedResponseData,
  scenario_supplement: ScenarioSupplementData,
  response_count_update: ResponseCountUpdateData,
  conversation_end: SessionOnlyData,
  session_resume: SessionOnlyData,
  get_message_history: SessionOnlyData,
} as const;

export type ClientEventType = keyof typeof CLIENT_EVENT_DATA;

export type ClientEvent = {
  [K in ClientEventType]: { type: K; data: z.output<(typeof CLIENT_EVENT_DATA)[K]> };
}[ClientEventType];

export type ClientEventOf<K extends ClientEventType> = Extract<ClientEvent, { type: K }>;


export function isClientEventType(type: string): type is ClientEventType {
  return Object.hasOwn(CLIENT_EVENT_DATA, type);
}
