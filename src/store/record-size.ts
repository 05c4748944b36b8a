import type { SessionRecord, StoredMessage } from './session-store.js';

// What a session costs in memory, estimated from its text: JavaScript strings take 1 byte per character
// when every character is Latin-1 and 2 otherwise; counted at 2 (CJK is the common case here). Each
// message and list item adds a fixed allowance for its object, its other strings and the array slot.
const BYTES_PER_CHAR = 2;
const MESSAGE_OVERHEAD_BYTES = 200;
const ITEM_OVERHEAD_BYTES = 40;
const SESSION_OVERHEAD_BYTES = 4_096;

/** Estimated bytes a session holds in memory (SESSION_MEMORY_MAX_MB, and the memory store's size); an estimate, not a measurement. */
export function estimateSessionBytes(record: SessionRecord): number {
  const chars = (record.scenarioDescription?.length ?? 0) + jsonChars(record.userProfile) + jsonChars(record.targetProfile);
  let bytes = SESSION_OVERHEAD_BYTES + chars * BYTES_PER_CHAR;
  for (const list of [record.historyMessages, record.messages]) {
    for (const message of list) bytes += estimateMessageBytes(message);
  }
  for (const text of [...record.modifications, ...record.focusedMessageIds, ...(record.recording?.segments ?? [])]) {
    bytes += estimateItemBytes(text);
  }
  return bytes;
}

/** One message's estimated bytes (its texts and its object). */
export function estimateMessageBytes(message: StoredMessage): number {
  return (message.messageId.length + message.sender.length + message.content.length) * BYTES_PER_CHAR + MESSAGE_OVERHEAD_BYTES;
}

/** One list item's (modification, segment) estimated bytes. */
export function estimateItemBytes(text: string): number {
  return text.length * BYTES_PER_CHAR + ITEM_OVERHEAD_BYTES;
}

/** Profiles are bounded and flat by the time they get here (protocol/conversation-start.ts). */
function jsonChars(profile: Record<string, unknown> | null): number {
  return profile === null ? 0 : JSON.stringify(profile).length;
}
