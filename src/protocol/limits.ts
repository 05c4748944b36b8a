// Bounds on what one client event may hold, so that no event can make the server hold megabytes per
// session or recurse without end. docs/protocol.md ("Limits") lists them.

export const LIMITS = {
  /**
   * Arrays/objects nested inside one another in one frame. The deepest event the protocol defines is 4
   * (frame > data > profile > list); anything past this is refused before JSON.parse (json-depth.ts).
   */
  jsonDepth: 32,
  sessionIdChars: 128,
  messageIdChars: 128,
  senderChars: 200,
  genderChars: 32,
  messageChars: 20_000,
  scenarioChars: 20_000,
  modificationChars: 2_000,
  userCorpusChars: 10_000,
  historyMessages: 1_000,
  focusedMessageIds: 1_000,
  profileListItems: 100,
  profileItemChars: 500,
} as const;
