import t from 'tap';
import { LogLimiter } from '../src/log-limiter.js';

t.test('one line per interval; the next written line counts the ones left out', async (t) => {
  const limiter = new LogLimiter({ intervalMs: 1_000, linesPerInterval: 1 });
  t.equal(limiter.take(0), 0);
  t.equal(limiter.take(10), null);
  t.equal(limiter.take(999), null);
  t.equal(limiter.take(1_000), 2);
  t.equal(limiter.take(5_000), 0);
});

t.test('several lines per interval, then silence until the next one', async (t) => {
  const limiter = new LogLimiter({ intervalMs: 1_000, linesPerInterval: 3 });
  t.same([limiter.take(0), limiter.take(1), limiter.take(2), limiter.take(3), limiter.take(4)], [0, 0, 0, null, null]);
  t.equal(limiter.take(1_000), 2, 'the first line of the next interval says how many were skipped');
});
