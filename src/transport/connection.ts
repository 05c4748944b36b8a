import type { Logger } from 'pino';
import type { WebSocket } from 'uWebSockets.js';
import { SlowConsumerError } from '../errors.js';
import type { ClientChannel } from '../dialogue/channel.js';
import type { ServerEvent } from '../protocol/server-events.js';

/** WebSocket close codes voxgate uses (RFC 6455 section 7.4.1). */
export const CloseCode = {
  goingAway: 1001,
  policyViolation: 1008,
  messageTooBig: 1009,
  tryAgainLater: 1013,
} as const;

export interface ConnectionLimits {
  /** Past this many buffered bytes producers pause (needsDrain). */
  highWaterBytes: number;
  /** Past this many buffered bytes the client is too slow: the connection is closed. */
  maxBufferedBytes: number;
  /** How long a producer may wait for a drain before giving up with SlowConsumerError. */
  slowConsumerTimeoutMs: number;
  eventRatePerSecond: number;
  eventRateBurst: number;
}

/** What uWS keeps per socket: set at upgrade, filled in at open. */
export interface SocketUserData {
  clientId: string | null;
  path: string;
  remoteAddress: string;
  /** The X-Forwarded-For header set by a reverse proxy (the real client), or null. */
  forwardedFor: string | null;
  connection: Connection | null;
}

interface DrainWaiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * One client connection over a uWebSockets.js socket. It owns the socket's lifetime: after the close
 * handler ran, touching the socket throws, so every send checks `isClosed` first. It also owns the
 * connection's send backpressure and its event-rate budget.
 */
export class Connection implements ClientChannel {
  readonly id: string;
  readonly remoteAddress: string;
  readonly log: Logger;
  readonly #socket: WebSocket<SocketUserData>;
  readonly #limits: ConnectionLimits;
  readonly #drainWaiters: DrainWaiter[] = [];
  #isClosed = false;
  #tokens: number;
  #tokensRefilledAt = performance.now();

  constructor(id: string, socket: WebSocket<SocketUserData>, limits: ConnectionLimits, log: Logger) {
    this.id = id;
    this.remoteAddress = socket.getUserData().remoteAddress;
    this.#socket = socket;
    this.#limits = limits;
    this.log = log;
    this.#tokens = limits.eventRateBurst;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  get needsDrain(): boolean {
    return !this.#isClosed && this.#socket.getBufferedAmount() > this.#limits.highWaterBytes;
  }

  bufferedBytes(): number {
    return this.#isClosed ? 0 : this.#socket.getBufferedAmount();
  }

  send(event: ServerEvent): boolean {
    if (this.#isClosed) return false;
    return this.#write(JSON.stringify(event));
  }

  sendAll(events: readonly ServerEvent[]): void {
    if (this.#isClosed || events.length === 0) return;
    if (events.length === 1) {
      this.#write(JSON.stringify(events[0]));
      return;
    }
    this.#socket.cork(() => {
      for (const event of events) if (!this.#write(JSON.stringify(event))) return;
    });
  }

  drained(): Promise<void> {
    if (this.#isClosed) return Promise.reject(new SlowConsumerError('connection closed'));
    if (!this.needsDrain) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: DrainWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#removeWaiter(waiter);
          reject(new SlowConsumerError(`client did not read its data for ${this.#limits.slowConsumerTimeoutMs} ms`));
        }, this.#limits.slowConsumerTimeoutMs),
      };
      this.#drainWaiters.push(waiter);
    });
  }

  /** Takes one event from the rate budget (token bucket); false when the client is over its rate. */
  takeEventToken(): boolean {
    const now = performance.now();
    const refill = ((now - this.#tokensRefilledAt) / 1000) * this.#limits.eventRatePerSecond;
    this.#tokens = Math.min(this.#limits.eventRateBurst, this.#tokens + refill);
    this.#tokensRefilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** uWS drain handler: wake producers once the buffer is below the high-water mark. */
  onDrain(): void {
    if (this.needsDrain) return;
    for (const waiter of this.#drainWaiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
  }

  /** uWS close handler ran: the socket is gone. */
  onClosed(): void {
    this.#isClosed = true;
    for (const waiter of this.#drainWaiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new SlowConsumerError('connection closed'));
    }
  }

  /** Closes with a code and a reason the client can read. */
  close(code: number, reason: string): void {
    if (this.#isClosed) return;
    this.#socket.end(code, reason.slice(0, 120));
  }

  #write(text: string): boolean {
    const status = this.#socket.send(text, false);
    // 2 = dropped past maxBackpressure: the client would miss an event, so it must reconnect and resume.
    if (status === 2 || this.#socket.getBufferedAmount() > this.#limits.maxBufferedBytes) {
      this.log.warn({ bufferedBytes: this.#socket.getBufferedAmount() }, 'slow consumer: closing connection');
      this.close(CloseCode.policyViolation, 'slow consumer: send buffer limit exceeded');
      return false;
    }
    return true;
  }

  #removeWaiter(waiter: DrainWaiter): void {
    const index = this.#drainWaiters.indexOf(waiter);
    if (index >= 0) this.#drainWaiters.splice(index, 1);
  }
}
