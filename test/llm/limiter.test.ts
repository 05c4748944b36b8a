import t from 'tap';
import { RequestLimiter } from '../../src/llm/limiter.js';

const never = (): AbortSignal => new AbortController().signal;

t.test('hands slots out in FIFO order and refuses beyond the queue', async (t) => {
  const limiter = new RequestLimiter({ maxInFlight: 1, maxQueue: 2 });
  await limiter.acquire(never());
  const order: string[] = [];
  const b = limiter.acquire(never()).then(() => order.push('b'));
  const c = limiter.acquire(never()).then(() => order.push('c'));
  await t.rejects(limiter.acquire(never()), { code: 'LLM_SERVICE_BUSY' });
  t.match(limiter, { inFlight: 1, queued: 2 });
  limiter.release();
  await b;
  limiter.release();
  await c;
  t.same(order, ['b', 'c']);
  limiter.release();
  t.match(limiter, { inFlight: 0, queued: 0 });
});

t.test('an aborted waiter leaves the queue and never takes a slot', async (t) => {
  const limiter = new RequestLimiter({ maxInFlight: 1, maxQueue: 1 });
  await limiter.acquire(never());
  const controller = new AbortController();
  const waiting = limiter.acquire(controller.signal);
  controller.abort(new Error('gone'));
  await t.rejects(waiting, { message: 'gone' });
  t.equal(limiter.queued, 0);
  const next = limiter.acquire(never());
  limiter.release();
  await next;
  t.equal(limiter.inFlight, 1, 'the slot went to the live waiter');
});

t.test('close fails queued waiters and refuses new ones', async (t) => {
  const limiter = new RequestLimiter({ maxInFlight: 1, maxQueue: 1 });
  await limiter.acquire(never());
  const waiting = limiter.acquire(never());
  limiter.close();
  await t.rejects(waiting, { code: 'SERVER_SHUTTING_DOWN' });
  await t.rejects(limiter.acquire(never()), { code: 'SERVER_SHUTTING_DOWN' });
});
