// How a SessionRecord is laid out in Redis (see redis-scripts.ts for the keys): scalar fields in the
// `meta` hash, nullable and structured ones as JSON (so that null, '' and key order survive exactly),
// each message as one JSON list item.
import type { RecordingState, SessionRecord, SessionSettingsPatch, StoredMessage } from './session-store.js';

/** The WRITE script's `update` arguments: meta pair count, pairs, then '1' + segments when the recording changes. */
export function updateArgs(patch: SessionSettingsPatch): string[] {
  const pairs: string[] = [];
  if (patch.scenarioDescription !== undefined) pairs.push('scenario', JSON.stringify(patch.scenarioDescription));
  if (patch.responseCount !== undefined) pairs.push('responseCount', String(patch.responseCount));
  if (patch.focusedMessageIds !== undefined) pairs.push('focused', JSON.stringify(patch.focusedMessageIds));
  if (patch.recording !== undefined) pairs.push('recording', recordingJson(patch.recording));
  const segments = patch.recording === undefined ? ['0'] : ['1', ...(patch.recording?.segments ?? [])];
  return [String(pairs.length / 2), ...pairs, ...segments];
}

/** The `meta` hash of a new session, as field/value pairs. */
export function metaPairs(record: SessionRecord): string[] {
  return [
    'id', record.id,
    'owner', JSON.stringify(record.owner ?? null),
    'createdAt', record.createdAt,
    'updatedAt', record.updatedAt,
    'scenario', JSON.stringify(record.scenarioDescription),
    'responseCount', String(record.responseCount),
    'userProfile', JSON.stringify(record.userProfile),
    'targetProfile', JSON.stringify(record.targetProfile),
    'focused', JSON.stringify(record.focusedMessageIds),
    'recording', recordingJson(record.recording),
  ];
}

function recordingJson(recording: RecordingState | null): string {
  return recording === null ? 'null' : JSON.stringify({ messageId: recording.messageId, sender: recording.sender, startedAt: recording.startedAt });
}

export function messageJson(message: StoredMessage): string {
  return JSON.stringify({ messageId: message.messageId, sender: message.sender, content: message.content, createdAt: message.createdAt, type: message.type });
}

function parseMessage(text: string): StoredMessage {
  return JSON.parse(text) as StoredMessage;
}


/** A session from its `meta` hash and lists; null when the hash is gone (no such session). */
export function decodeRecord(
  meta: Record<string, string>,
  lists: { history: string[]; messages: string[]; modifications: string[]; segments: string[] },
): SessionRecord | null {
  if (meta.id === undefined) return null;
  const recording = JSON.parse(meta.recording ?? 'null') as Omit<RecordingState, 'segments'> | null;
  return {
    id: meta.id,
    owner: JSON.parse(meta.owner ?? 'null') as string | null,
    createdAt: meta.createdAt!,
    updatedAt: meta.updatedAt!,
    scenarioDescription: JSON.parse(meta.scenario ?? 'null') as string | null,
    responseCount: Number(meta.responseCount),
    userProfile: JSON.parse(meta.userProfile ?? 'null') as SessionRecord['userProfile'],
    targetProfile: JSON.parse(meta.targetProfile ?? 'null') as SessionRecord['targetProfile'],
    historyMessages: lists.history.map(parseMessage),
    messages: lists.messages.map(parseMessage),
    focusedMessageIds: JSON.parse(meta.focused ?? '[]') as string[],
    modifications: lists.modifications,
    recording: recording === null ? null : { messageId: recording.messageId, sender: recording.sender, segments: lists.segments, startedAt: recording.startedAt },
  };
}
