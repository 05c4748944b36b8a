// conversation_start is never refused for what the app can put in it: the app waits for session_created
// behind a loading screen with no timeout, so a refusal leaves the user stuck. Everything optional is
// made to fit instead, and each change is reported in `adjustments` for the log:
//   - more than LIMITS.historyMessages history messages: the newest (last) ones are kept;
//   - a history message whose message_id, sender or content is not a string: that message is dropped;
//   - over-long texts (scenario, message fields, profile fields and list items): truncated;
//   - a profile `age` that is not an integer 0..200 (or such a number as a string): dropped;
//   - a profile field of the wrong type, list items that are not strings, lists past their length: dropped;
//   - fields of a profile that voxgate does not know: dropped, never stored (the replaced backend's
//     pydantic model ignored them too, so profile_archive returns the known fields as received).
// Only response_count (required, an integer 1..5) can make the event fail.

import { LIMITS } from './limits.js';

/** The profile fields voxgate knows; profile_archive returns these, as received. */
export interface ProfileInput {
  name?: string | null;
  age?: number | null;
  gender?: string | null;
  relations?: string[] | null;
  personalities?: string[] | null;
  preferences?: string[] | null;
  taboos?: string[] | null;
  common_topics?: string[] | null;
}

export interface HistoryMessageInput {
  message_id: string;
  sender: string;
  content: string;
}

export interface ConversationStartInput {
  response_count: number;
  scenario_description: string | null;
  history_messages: HistoryMessageInput[];
  user_profile: ProfileInput | null;
  target_profile: ProfileInput | null;
  /** What was dropped or shortened to make the event fit, one short line per kind of change. */
  adjustments: string[];
}

const PROFILE_LISTS = ['relations', 'personalities', 'preferences', 'taboos', 'common_topics'] as const;
const MIN_AGE = 0;
const MAX_AGE = 200;
const HISTORY_FIELD_CHARS = { message_id: LIMITS.messageIdChars, sender: LIMITS.senderChars, content: LIMITS.messageChars } as const;
// How many unknown profile keys an adjustment line names (the rest are counted).
const NAMED_KEYS = 5;

/** Makes the optional parts of a conversation_start fit (see the top of this file); never throws. */
export function normaliseConversationStart(data: {
  response_count: number;
  scenario_description?: unknown;
  history_messages?: unknown;
  user_profile?: unknown;
  target_profile?: unknown;
}): ConversationStartInput {
  const adjustments: string[] = [];
  return {
    response_count: data.response_count,
    scenario_description: optionalText(data.scenario_description, 'scenario_description', LIMITS.scenarioChars, adjustments),
    history_messages: historyMessages(data.history_messages, adjustments),
    user_profile: profile(data.user_profile, 'user_profile', adjustments),
    target_profile: profile(data.target_profile, 'target_profile', adjustments),
    adjustments,
  };
}

function optionalText(value: unknown, path: string, maxChars: number, adjustments: string[]): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') {
    adjustments.push(`${path}: ${typeName(value)} instead of a string, dropped`);
    return null;
  }
  if (value.length <= maxChars) return value;
  adjustments.push(`${path}: ${value.length} chars, truncated to ${maxChars}`);
  return truncate(value, maxChars);
}

function historyMessages(value: unknown, adjustments: string[]): HistoryMessageInput[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    adjustments.push(`history_messages: ${typeName(value)} instead of a list, dropped`);
    return [];
  }
  let items: unknown[] = value;
  if (items.length > LIMITS.historyMessages) {
    adjustments.push(`history_messages: ${items.length} messages, the oldest ${items.length - LIMITS.historyMessages} dropped`);
    items = items.slice(items.length - LIMITS.historyMessages);
  }
  const messages: HistoryMessageInput[] = [];
  let malformed = 0;
  const truncated = { message_id: 0, sender: 0, content: 0 };
  for (const item of items) {
    if (!isPlainObject(item)) {
      malformed++;
      continue;
    }
    const { message_id: messageId, sender, content } = item;
    if (typeof messageId !== 'string' || typeof sender !== 'string' || typeof content !== 'string') {
      malformed++;
      continue;
    }
    messages.push({
      message_id: fit(messageId, 'message_id', truncated),
      sender: fit(sender, 'sender', truncated),
      content: fit(content, 'content', truncated),
    });
  }
  if (malformed > 0) {
    adjustments.push(`history_messages: ${malformed} message(s) without string message_id, sender and content, dropped`);
  }
  for (const field of Object.keys(truncated) as Array<keyof typeof truncated>) {
    const count = truncated[field];
    if (count > 0) adjustments.push(`history_messages: ${count} ${field}(s) truncated to ${HISTORY_FIELD_CHARS[field]} chars`);
  }
  return messages;
}

function fit(text: string, field: keyof typeof HISTORY_FIELD_CHARS, counts: Record<string, number>): string {
  const maxChars = HISTORY_FIELD_CHARS[field];
  if (text.length <= maxChars) return text;
  counts[field] = (counts[field] ?? 0) + 1;
  return truncate(text, maxChars);
}

function profile(value: unknown, path: string, adjustments: string[]): ProfileInput | null {
  if (value === undefined || value === null) return null;
  if (!isPlainObject(value)) {
    adjustments.push(`${path}: ${typeName(value)} instead of an object, dropped`);
    return null;
  }
  // In the client's key order, so that what is stored and archived reads as it was sent.
  const result: ProfileInput = {};
  const unknown: string[] = [];
  for (const key of Object.keys(value)) {
    const field = value[key];
    if (key === 'name') result.name = optionalText(field, `${path}.name`, LIMITS.senderChars, adjustments);
    else if (key === 'gender') result.gender = optionalText(field, `${path}.gender`, LIMITS.genderChars, adjustments);
    else if (key === 'age') {
      const age = ageOf(field);
      if (age === undefined) adjustments.push(`${path}.age: ${describe(field)} is not an age ${MIN_AGE}..${MAX_AGE}, dropped`);
      else result.age = age;
    } else if (isProfileList(key)) result[key] = stringList(field, `${path}.${key}`, adjustments);
    else unknown.push(key);
  }
  if (unknown.length > 0) {
    const named = unknown.slice(0, NAMED_KEYS).map((key) => JSON.stringify(truncate(key, 40))).join(', ');
    const more = unknown.length > NAMED_KEYS ? ` and ${unknown.length - NAMED_KEYS} more` : '';
    adjustments.push(`${path}: unknown field(s) ${named}${more} dropped`);
  }
  return result;
}

/** An integer age 0..200 (also from a string of digits, as the replaced backend's pydantic accepted), null, or undefined to drop. */
function ageOf(value: unknown): number | null | undefined {
  if (value === null) return null;
  const age = typeof value === 'string' && /^\s*\d{1,3}\s*$/.test(value) ? Number(value) : value;
  if (typeof age === 'number' && Number.isInteger(age) && age >= MIN_AGE && age <= MAX_AGE) return age;
  return undefined;
}

function stringList(value: unknown, path: string, adjustments: string[]): string[] | null {
  if (value === null) return null;
  if (!Array.isArray(value)) {
    adjustments.push(`${path}: ${typeName(value)} instead of a list of strings, dropped`);
    return null;
  }
  let items: unknown[] = value;
  if (items.length > LIMITS.profileListItems) {
    adjustments.push(`${path}: ${items.length} items, the last ${items.length - LIMITS.profileListItems} dropped`);
    items = items.slice(0, LIMITS.profileListItems);
  }
  const strings: string[] = [];
  let notStrings = 0;
  let truncated = 0;
  for (const item of items) {
    if (typeof item !== 'string') {
      notStrings++;
    } else if (item.length > LIMITS.profileItemChars) {
      truncated++;
      strings.push(truncate(item, LIMITS.profileItemChars));
    } else {
      strings.push(item);
    }
  }
  if (notStrings > 0) adjustments.push(`${path}: ${notStrings} item(s) that are not strings dropped`);
  if (truncated > 0) adjustments.push(`${path}: ${truncated} item(s) truncated to ${LIMITS.profileItemChars} chars`);
  return strings;
}

/** The first `maxChars` UTF-16 units, never ending in half a surrogate pair. */
export function truncate(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const last = text.charCodeAt(maxChars - 1);
  const end = last >= 0xd800 && last <= 0xdbff ? maxChars - 1 : maxChars;
  return text.slice(0, end);
}

function describe(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(truncate(value, 20));
  return typeName(value);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function isProfileList(key: string): key is (typeof PROFILE_LISTS)[number] {
  return (PROFILE_LISTS as readonly string[]).includes(key);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
