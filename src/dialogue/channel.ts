import type { Logger } from 'pino';
import type { ServerEvent } from '../protocol/server-events.js';

/**
 * A client connection as the dialogue layer sees it. transport/connection.ts implements it over a
 * uWebSockets.js socket; dialogue code never touches sockets.
 */
export interface ClientChannel {
  readonly id: string;
  /** The peer's IP address as the socket sees it (a reverse proxy's, behind one); sessions are capped per address. */
  readonly remoteAddress: string;
  readonly log: Logger;
  readonly isClosed: boolean;
  /** Sends one event; false when the connection is closed (the event is then dropped on purpose). */
  send(event: ServerEvent): boolean;
  /** Sends several events in one corked batch. */
  sendAll(events: readonly ServerEvent[]): void;
  /** Bytes queued in the socket's send buffer. */
  bufferedBytes(): number;
  /** True when bufferedBytes() is past the high-water mark: pause producers. */
  readonly needsDrain: boolean;
  /** Resolves when the buffer drops below the high-water mark; rejects (SlowConsumerError) if it never does. */
  drained(): Promise<void>;
}
