import { pino } from 'pino';
import t from 'tap';
import type { ClientChannel } from '../../src/dialogue/channel.js';
import { HeldEvents } from '../../src/dialogue/held-events.js';

const channel = (id: string): ClientChannel =>
  ({
    id,
    log: pino({ level: 'silent' }),
    remoteAddress: '127.0.0.1',
    owner: null,
    grants: null,
    isClosed: false,
    needsDrain: false,
    send: () => true,
    sendAll: () => {},
    bufferedBytes: () => 0,
    drained: async () => {},
  }) as ClientChannel;

t.test('one connection naming many busy sessions holds no more than the limits in all', async (t) => {
  const held = new HeldEvents<{ bytes: number }>({ maxBytes: 1000, maxJobs: 10 });
  const attacker = channel('attacker');
  const results = [];
  for (let session = 0; session < 50; session++) results.push(held.hold(attacker, `s${session}`, { bytes: 400 }));
  t.same(results.slice(0, 2), ['held', 'held'], 'the first two fit the 1000-byte budget');
  t.equal(results[2], 'overflowed', 'the third session is refused once');
  t.ok(results.slice(3).every((result) => result === 'overflowed'), 'every further session is refused: nothing more is kept');
  const kept = Array.from({ length: 50 }, (_, session) => held.take(attacker, `s${session}`).length).reduce((a, b) => a + b, 0);
  t.equal(kept, 2, 'only what fitted was kept');
});

t.test('taking a hold gives its budget back to the connection', async (t) => {
  const held = new HeldEvents<{ bytes: number }>({ maxBytes: 1000, maxJobs: 3 });
  const reconnecting = channel('app');
  t.equal(held.hold(reconnecting, 'a', { bytes: 0 }), 'held');
  t.equal(held.hold(reconnecting, 'a', { bytes: 0 }), 'held');
  t.equal(held.hold(reconnecting, 'b', { bytes: 0 }), 'held');
  t.equal(held.hold(reconnecting, 'b', { bytes: 0 }), 'overflowed', 'three jobs in all across both sessions');
  t.equal(held.take(reconnecting, 'a').length, 2);
  t.equal(held.hold(reconnecting, 'c', { bytes: 900 }), 'held', 'room again once session a was resumed');
  t.equal(held.hold(reconnecting, 'b', { bytes: 0 }), 'dropped', 'a hold that overflowed stays so until taken (reported once)');
});

t.test('connections are bounded separately', async (t) => {
  const held = new HeldEvents<{ bytes: number }>({ maxBytes: 100, maxJobs: 10 });
  t.equal(held.hold(channel('one'), 's', { bytes: 100 }), 'held');
  t.equal(held.hold(channel('two'), 's', { bytes: 100 }), 'held');
});
