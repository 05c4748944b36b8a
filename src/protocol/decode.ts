import type { z } from 'zod';
import {
  InvalidEventDataError,
  InvalidEventTypeError,
  MissingRequiredFieldError,
  type VoxgateError,
} from '../errors.js';
import { CLIENT_EVENT_DATA, isClientEventType, type ClientEvent } from './client-events.js';
import { exceedsJsonDepth } from './json-depth.js';
import { LIMITS } from './limits.js';

export type DecodeResult =
  | { ok: true; event: ClientEvent }
  /** `sessionId` is the event's `data.session_id` when it had a readable one, for the error event. */
  | { ok: false; error: VoxgateError; sessionId: string | null };

/**
 * Parses one text frame into a validated client event, or says exactly what is wrong with it. The
 * nesting depth is bounded before JSON.parse runs (json-depth.ts says why); the frame's size is bounded
 * by the transport (WEBSOCKET_MAX_MESSAGE_SIZE). Unknown fields are dropped by the schemas, so nothing a
 * client adds beyond the protocol's fields is stored or logged.
 */
export function decodeClientEvent(text: string): DecodeResult {
  if (exceedsJsonDepth(text, LIMITS.jsonDepth)) {
    return fail(
      new InvalidEventDataError(`message is nested deeper than ${LIMITS.jsonDepth} levels`, {
        details: `max_json_depth: ${LIMITS.jsonDepth}`,
      }),
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return fail(new InvalidEventDataError('message is not valid JSON', { details: (err as Error).message, cause: err }));
  }
  if (!isPlainObject(raw)) {
    return fail(new InvalidEventDataError('message must be a JSON object {"type", "data"}', { details: 'expected an object' }));
  }
  const data = raw.data === undefined || raw.data === null ? {} : raw.data;
  const sessionId = isPlainObject(data) && typeof data.session_id === 'string' ? data.session_id.slice(0, LIMITS.sessionIdChars) : null;
  if (raw.type === undefined) {
    return fail(new MissingRequiredFieldError('message has no "type"', { details: 'type: required' }), sessionId);
  }
  if (typeof raw.type !== 'string') {
    return fail(new InvalidEventDataError('"type" must be a string', { details: 'type: expected string' }), sessionId);
  }
  if (!isClientEventType(raw.type)) {
    return fail(
      new InvalidEventTypeError(`unknown event type "${raw.type.slice(0, 64)}"`, { details: `type: ${raw.type.slice(0, 64)}` }),
      sessionId,
    );
  }
  if (!isPlainObject(data)) {
    return fail(new InvalidEventDataError('"data" must be an object', { details: 'data: expected object' }), sessionId);
  }
  const parsed = CLIENT_EVENT_DATA[raw.type].safeParse(data);
  if (!parsed.success) return fail(errorFromIssues(parsed.error.issues, data), sessionId);
  return { ok: true, event: { type: raw.type, data: parsed.data } as ClientEvent };
}

function fail(error: VoxgateError, sessionId: string | null = null): DecodeResult {
  return { ok: false, error, sessionId };
}

// An event with a thousand bad list items gets the first few named, not a 50 KB `details` (it is sent
// back and logged).
const MAX_ISSUES_NAMED = 10;

/** One issue per offending field, `data.<path>: <problem>`; a missing field wins the error code. */
function errorFromIssues(allIssues: readonly z.core.$ZodIssue[], data: Record<string, unknown>): VoxgateError {
  const missing: string[] = [];
  const invalid: string[] = [];
  for (const issue of allIssues.slice(0, MAX_ISSUES_NAMED)) {
    const path = ['data', ...issue.path.map(String)].join('.');
    if (issue.code === 'invalid_type' && valueAt(data, issue.path) === undefined) {
      missing.push(`${path}: required`);
    } else {
      invalid.push(`${path}: ${issue.message}`);
    }
  }
  if (allIssues.length > MAX_ISSUES_NAMED) invalid.push(`and ${allIssues.length - MAX_ISSUES_NAMED} more`);
  if (missing.length > 0) {
    return new MissingRequiredFieldError(`missing required field(s): ${missing.map((m) => m.split(':')[0]).join(', ')}`, {
      details: [...missing, ...invalid].join('; '),
    });
  }
  return new InvalidEventDataError(`invalid field(s): ${invalid.map((m) => m.split(':')[0]).join(', ')}`, {
    details: invalid.join('; '),
  });
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
