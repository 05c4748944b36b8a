import type { SessionRecord } from '../store/session-store.js';

// What a session costs in memory, estimated from its text: JavaScript strings take 1 byte per character
// when every character is Latin-1 and 2 otherwise; counted at 2 (CJK is the common case here). Each
// message and list item adds a fixed allowance for its object, its other strings and the array slot.
const BYTES_PER_CHAR = 2;
const MESSAGE_OVERHEAD_BYTES = 200;
const ITEM_OVERHEAD_BYTES = 40;
const SESSION_OVERHEAD_BYTES = 4_096;

/** Estimated bytes a session holds in memory (used for SESSION_MEMORY_MAX_MB; an estimate, not a measurement). */
export function estimateSessionBytes(record: SessionRecord): number {
  let chars = (record.scenarioDescription?.length ?? 0) + jsonChars(record.userProfile) + jsonChars(record.targetProfile);
  let overhead = SESSION_OVERHEAD_BYTES;
  for (const list of [record.historyMessages, record.messages]) {
    for (const message of list) {
      chars += message.messageId.length + message.sender.length + message.content.length;
      overhead += MESSAGE_OVERHEAD_BYTES;
    }
  }
  for (const text of [...record.modifications, ...record.focusedMessageIds, ...(record.recording?.segments ?? [])]) {
    chars += text.length;
    overhead += ITEM_OVERHEAD_BYTES;
  }
  return chars * BYTES_PER_CHAR + overhead;
}

/** Profiles are bounded and flat by the time they get here (protocol/conversation-start.ts). */
function jsonChars(profile: Record<string, unknown> | null): number {
  return profile === null ? 0 : JSON.stringify(profile).length;
}
