import type { Logger } from 'pino';
import type { WebSocket } from 'uWebSockets.js';
import { SlowConsumerError } from '../errors.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Grants, Principal } from '../auth/authenticator.js';
import type { ClientChannel } from '../dialogue/channel.js';
import type { ServerEvent } from '../protocol/server-events.js';
import type { AsrSession } from '../asr/session.js';
import { LogLimiter } from '../log-limiter.js';

/** WebSocket close codes voxgate uses (RFC 6455 section 7.4.1). */
export const CloseCode = {
  goingAway: 1001,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
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
  /** The client's address: the peer's, or the one a trusted proxy forwarded (TRUST_PROXY). */
  remoteAddress: string;
  /** The address of the TCP peer (a reverse proxy, if there is one). */
  peerAddress: string;
  /** The X-Forwarded-For header as received, or null (logged; trusted only with TRUST_PROXY). */
  forwardedFor: string | null;
  /** Extension event types this connection did not ask for (protocol/extensions.ts). */
  withheldEvents: ReadonlySet<string>;
  /** Whom the upgrade's credential named (src/auth/), or null when credentials are off. */
  principal: Principal | null;
  connection: Connection | null;
  /** Set first thing in the close handler: the socket must not be touched after it. */
  isClosed: boolean;
  /** The /asr endpoint's session for this socket (set at open), or null on the conversation endpoint. */
  asrSession: AsrSession | null;
  /** Whether the upgrade was for the /asr endpoint. */
  isAsr: boolean;
}

export interface ConnectionOptions {
  id: string;
  socket: WebSocket<SocketUserData>;
  limits: ConnectionLimits;
  log: Logger;
  remoteAddress: string;
  withheldEvents: ReadonlySet<string>;
  principal: Principal | null;
  metrics: Metrics;
}

/**
 * What to do with one control event or one bad frame, given the connection's budget:
 * `admitted`: handle it (or answer it); `dropped`: ignore it silently; `droppedNotify`: ignore it and send
 * one RATE_LIMITED error (once per budget window); `closed`: persistent abuse, the connection was closed.
 */
export type Admission = 'admitted' | 'dropped' | 'droppedNotify' | 'closed';

/** Over-budget events are counted per window; the first one in a window is answered, the rest are not. */
const OVER_BUDGET_WINDOW_MS = 10_000;
/** Bad input is logged at most once per interval per connection. */
const BAD_INPUT_LOG_INTERVAL_MS = 10_000;

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
  readonly log: Logger;
  readonly remoteAddress: string;
  readonly owner: string | null;
  readonly grants: Grants | null;
  readonly principal: Principal | null;
  readonly #socket: WebSocket<SocketUserData>;
  readonly #limits: ConnectionLimits;
  readonly #withheldEvents: ReadonlySet<string>;
  readonly #metrics: Metrics;
  readonly #drainWaiters: DrainWaiter[] = [];
  #isClosed = false;
  #tokens: number;
  #tokensRefilledAt = performance.now();
  #overBudgetWindowStartedAt = -Infinity;
  #droppedInWindow = 0;
  #badInputLog: LogLimiter | null = null;
  /** Set when uWS starts buffering our sends (the client reads slower than we write); cleared at drain. */
  #isBackpressured = false;

  constructor(options: ConnectionOptions) {
    this.id = options.id;
    this.#socket = options.socket;
    this.#limits = options.limits;
    this.log = options.log;
    this.remoteAddress = options.remoteAddress;
    this.principal = options.principal;
    this.owner = options.principal?.owner ?? null;
    this.grants = options.principal?.grants ?? null;
    this.#withheldEvents = options.withheldEvents;
    this.#metrics = options.metrics;
    this.#tokens = options.limits.eventRateBurst;
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

  wants(type: ServerEvent['type']): boolean {
    return !this.#isClosed && !this.#withheldEvents.has(type);
  }

  /** Extension events the client did not ask for are dropped here (true: the connection is fine). */
  send(event: ServerEvent): boolean {
    if (this.#isClosed) return false;
    if (this.#withheldEvents.has(event.type)) return true;
    if (event.type === 'error') this.#metrics.errors.inc({ code: event.data.error_code });
    return this.#write(JSON.stringify(event));
  }

  /** One text frame as is (the /asr endpoint's replies are libvosk's JSON, not server events). */
  sendText(text: string): boolean {
    if (this.#isClosed) return false;
    return this.#write(text);
  }

  sendAll(events: readonly ServerEvent[]): void {
    if (this.#isClosed || events.length === 0) return;
    if (events.length === 1) {
      this.send(events[0]!);
      return;
    }
    this.#socket.cork(() => {
      for (const event of events) {
        if (this.#withheldEvents.has(event.type)) continue;
        if (event.type === 'error') this.#metrics.errors.inc({ code: event.data.error_code });
        if (!this.#write(JSON.stringify(event))) return;
      }
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

  /**
   * Takes one control event or one bad frame from the rate budget (a token bucket of
   * EVENT_RATE_PER_SECOND, burst EVENT_RATE_BURST). Over budget, events are dropped; the first drop in a
   * 10 s window is answered with one RATE_LIMITED error, later ones are not (a reply per dropped frame
   * would give a flooding client an unbounded stream of errors); more than EVENT_RATE_BURST drops in one
   * window is persistent abuse: the connection is closed with 1008.
   */
  admitEvent(): Admission {
    const now = performance.now();
    const refill = ((now - this.#tokensRefilledAt) / 1000) * this.#limits.eventRatePerSecond;
    this.#tokens = Math.min(this.#limits.eventRateBurst, this.#tokens + refill);
    this.#tokensRefilledAt = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 'admitted';
    }
    if (now - this.#overBudgetWindowStartedAt >= OVER_BUDGET_WINDOW_MS) {
      this.#overBudgetWindowStartedAt = now;
      this.#droppedInWindow = 0;
    }
    this.#droppedInWindow++;
    if (this.#droppedInWindow > this.#limits.eventRateBurst) {
      this.log.warn({ droppedEvents: this.#droppedInWindow, windowMs: OVER_BUDGET_WINDOW_MS }, 'event rate limit exceeded persistently: closing connection');
      this.close(CloseCode.policyViolation, 'event rate limit exceeded');
      return 'closed';
    }
    return this.#droppedInWindow === 1 ? 'droppedNotify' : 'dropped';
  }

  /**
   * Whether a line about this connection's bad input may be logged now (once per 10 s); returns how many
   * were skipped since the last one, or null to skip this one.
   */
  takeBadInputLogLine(): number | null {
    this.#badInputLog ??= new LogLimiter({ intervalMs: BAD_INPUT_LOG_INTERVAL_MS, linesPerInterval: 1 });
    return this.#badInputLog.take();
  }

  /** uWS drain handler: wake producers once the buffer is below the high-water mark. */
  onDrain(): void {
    if (this.needsDrain) return;
    if (this.#isBackpressured) {
      this.#isBackpressured = false;
      this.log.debug({ bufferedBytes: this.#socket.getBufferedAmount() }, 'send buffer drained');
    }
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
    const bufferedBytes = this.#socket.getBufferedAmount();
    // 2 = dropped past maxBackpressure: the client would miss an event, so it must reconnect and resume.
    if (status === 2 || bufferedBytes > this.#limits.maxBufferedBytes) {
      this.log.warn({ bufferedBytes }, 'slow consumer: closing connection');
      this.close(CloseCode.policyViolation, 'slow consumer: send buffer limit exceeded');
      return false;
    }
    if (bufferedBytes > 0 && !this.#isBackpressured) {
      this.#isBackpressured = true;
      this.log.debug({ bufferedBytes }, 'send buffer backpressure');
    }
    return true;
  }

  #removeWaiter(waiter: DrainWaiter): void {
    const index = this.#drainWaiters.indexOf(waiter);
    if (index >= 0) this.#drainWaiters.splice(index, 1);
  }
}
