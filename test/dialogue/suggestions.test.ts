// ReplyRunner with the mock LLM engine over real sessions; the connections are scripted ClientChannels
// (the transport edge), so a test decides exactly when one stops reading or closes.
import { pino } from 'pino';
import t from 'tap';
import type { ClientChannel } from '../../src/dialogue/channel.js';
import { RequestManager } from '../../src/dialogue/request-manager.js';
import { SessionManager } from '../../src/dialogue/session-manager.js';
import { ReplyRunner } from '../../src/dialogue/suggestions.js';
import { SlowConsumerError } from '../../src/errors.js';
import { MockLlmEngine } from '../../src/llm/mock-engine.js';
import type { ServerEvent } from '../../src/protocol/server-events.js';
import { MemorySessionStore } from '../../src/store/memory-store.js';

const logger = pino({ level: 'silent' });

/** A connection; `stall()` makes it stop reading (needsDrain), `close()` does what the transport's close does. */
class ScriptedChannel implements ClientChannel {
  readonly id: string;
  readonly log = logger;
  readonly remoteAddress = '127.0.0.1';
  readonly owner = null;
  readonly grants = null;
  readonly events: ServerEvent[] = [];
  isClosed = false;
  #isStalled = false;
  #drainWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  #onDrainWait: Array<() => void> = [];
  #onEvent: Array<() => void> = [];

  constructor(id: string) {
    this.id = id;
  }

  get needsDrain(): boolean {
    return !this.isClosed && this.#isStalled;
  }

  send(event: ServerEvent): boolean {
    if (this.isClosed) return false;
    this.events.push(event);
    for (const wake of this.#onEvent.splice(0)) wake();
    return true;
  }

  /** The first event (already received or still to come) matching `predicate`. */
  async waitForEvent(predicate: (event: ServerEvent) => boolean): Promise<ServerEvent> {
    for (;;) {
      const found = this.events.find(predicate);
      if (found) return found;
      await new Promise<void>((resolve) => this.#onEvent.push(resolve));
    }
  }

  sendAll(events: readonly ServerEvent[]): void {
    for (const event of events) this.send(event);
  }

  bufferedBytes(): number {
    return 0;
  }

  drained(): Promise<void> {
    if (this.isClosed) return Promise.reject(new SlowConsumerError('connection closed'));
    if (!this.needsDrain) return Promise.resolve();
    for (const wake of this.#onDrainWait.splice(0)) wake();
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  stall(): void {
    this.#isStalled = true;
  }

  /** Resolves once a producer waits for this channel to drain. */
  drainAwaited(): Promise<void> {
    if (this.#drainWaiters.length > 0) return Promise.resolve();
    return new Promise((resolve) => this.#onDrainWait.push(resolve));
  }

  /** Like transport/connection.ts onClosed(): waiting producers are rejected. */
  close(): void {
    this.isClosed = true;
    for (const waiter of this.#drainWaiters.splice(0)) waiter.reject(new SlowConsumerError('connection closed'));
  }
}

t.test('issue 12 #6: a connection that closes while a generation waits for its drain is skipped; the others get the suggestions', async (t) => {
  const requests = new RequestManager();
  const sessions = new SessionManager({ store: new MemorySessionStore(), requests, logger, maxSessionsPerConnection: 8, maxAgeMs: 60_000, cleanupIntervalMs: 60_000 });
  t.teardown(() => sessions.close());
  const replies = new ReplyRunner({ llm: new MockLlmEngine({ deltaDelayMs: 0, logger }), sessions, requests });

  const reader = new ScriptedChannel('reader');
  const stalled = new ScriptedChannel('stalled');
  const session = sessions.create(reader, { responseCount: 3, scenarioDescription: 'cafe', historyMessages: [], userProfile: null, targetProfile: null });
  sessions.resume(session.id, stalled);
  stalled.stall();

  const handle = replies.generate(session, null);
  await stalled.drainAwaited();
  stalled.close();
  sessions.detachChannel(stalled); // what the transport's close handler does next

  const response = await reader.waitForEvent((event) => event.type === 'llm_response' || event.type === 'error');
  t.match(response, { type: 'llm_response', data: { request_id: handle.requestId } }, 'the generation completed for the reader');
  t.equal((response.data as { suggestions: string[] }).suggestions.length, 3);
  t.notOk(reader.events.some((event) => event.type === 'error'), 'no SLOW_CONSUMER error for the reader');
});
