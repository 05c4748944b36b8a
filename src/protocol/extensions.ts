import type { ServerEventType } from './server-events.js';

/**
 * Server events voxgate adds to the replaced backend's nine (docs/protocol.md, "Extensions"). A
 * connection receives them only when its WebSocket URL asks: `?extensions=transcript_partial,llm_response_delta`
 * or `?extensions=all`. Clients written for the replaced backend read "the next event" or stop reading
 * while they stream audio, so unasked-for events break them.
 */
export const EXTENSION_EVENT_TYPES = ['transcript_partial', 'llm_response_delta'] as const satisfies readonly ServerEventType[];

export type ExtensionEventType = (typeof EXTENSION_EVENT_TYPES)[number];

const EXTENSION_NAMES: ReadonlySet<string> = new Set(EXTENSION_EVENT_TYPES);

export function isExtensionEventType(type: string): type is ExtensionEventType {
  return EXTENSION_NAMES.has(type);
}

// A handful of distinct sets exist (one per combination asked for): share them between connections.
const withheldSets = new Map<string, ReadonlySet<string>>();

/**
 * The extension event types a connection must NOT receive, from the (already percent-decoded) value of
 * its `extensions` query parameter, or null when there was none. Names are comma-separated; unknown
 * names are ignored; `all` asks for every extension. The sender needs one set lookup per event.
 */
export function withheldExtensionEvents(requested: string | null): ReadonlySet<string> {
  const wanted = new Set<string>();
  if (requested !== null) {
    for (const raw of requested.split(',')) {
      const name = raw.trim();
      if (name === 'all') for (const type of EXTENSION_EVENT_TYPES) wanted.add(type);
      else if (EXTENSION_NAMES.has(name)) wanted.add(name);
    }
  }
  const withheld = EXTENSION_EVENT_TYPES.filter((type) => !wanted.has(type));
  const key = withheld.join(',');
  let set = withheldSets.get(key);
  if (set === undefined) {
    set = new Set(withheld);
    withheldSets.set(key, set);
  }
  return set;
}
