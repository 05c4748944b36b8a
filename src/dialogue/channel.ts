import type { Logger } from 'pino';
import type { Grants } from '../auth/authenticator.js';
import type { ServerEvent } from '../protocol/server-events.js';

/**
 * A client connection as the dialogue layer sees it. transport/connection.ts implements it over a
 * uWebSockets.js socket; dialogue code never touches sockets.
 */
export interface ClientChannel {
  readonly id: string;
  readonly log: Logger;
  /** The client's address (the peer's, or the one a trusted proxy forwarded: TRUST_PROXY), e.g. for per-address caps. */
  readonly remoteAddress: string;
  /**
   * Who the connection's credential names (`sub:<sub>` or `key:<digest>`), or null without credentials
   * (AUTH_* unset). Sessions it creates belong to this owner; another owner's sessions do not exist for it.
   */
  readonly owner: string | null;
  /** The credential's grants (a JWT's `grants` claim), or null: they can lower or raise the owner's quotas. */
  readonly grants: Grants | null;
  readonly isClosed: boolean;
  /** Sends one event; false when the connection is closed (the event is then dropped on purpose). */
  send(event: ServerEvent): boolean;
  /** Would send() deliver events of this type (extension events are only sent when asked for)? Default: yes. */
  wants?(type: ServerEvent['type']): boolean;
  /** Sends several events in one corked batch. */
  sendAll(events: readonly ServerEvent[]): void;
  /** Bytes queued in the socket's send buffer. */
  bufferedBytes(): number;
  /** True when bufferedBytes() is past the high-water mark: pause producers. */
  readonly needsDrain: boolean;
  /** Resolves when the buffer drops below the high-water mark; rejects (SlowConsumerError) if it never does. */
  drained(): Promise<void>;
}
