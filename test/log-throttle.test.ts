import t from 'tap';
import { LogThrottle } from '../src/log-throttle.js';

t.test('one line per interval; the next written line counts the ones left out', async (t) => {
  const throttle = new LogThrottle({ intervalMs: 1_000 });
  t.same(throttle.take(0), { write: true, suppressed: 0 });
  t.same(throttle.take(10), { write: false, suppressed: 0 });
  t.same(throttle.take(999), { write: false, suppressed: 0 });
  t.same(throttle.take(1_000), { write: true, suppressed: 2 });
  t.same(throttle.take(5_000), { write: true, suppressed: 0 });
});
