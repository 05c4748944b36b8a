import t from 'tap';
import { addressKey } from '../../src/dialogue/session-bounds.js';

// MAX_SESSIONS_PER_ADDRESS counts per IPv4 address and per IPv6 /64: a host with IPv6 usually has a
// whole /64, so counting single IPv6 addresses would be no limit at all.

t.test('IPv4, IPv4-mapped IPv6 and IPv6 /64 keys', async (t) => {
  t.equal(addressKey('127.0.0.1'), '127.0.0.1');
  t.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3');
  t.equal(addressKey('0000:0000:0000:0000:0000:ffff:0a01:0203'), '10.1.2.3', 'as uWebSockets.js writes it');
  t.equal(addressKey('2001:0db8:0001:0002:0000:0000:0000:0001'), '2001:db8:1:2::/64');
  t.equal(addressKey('2001:db8:1:2::abcd'), '2001:db8:1:2::/64', 'another host of the same /64');
  t.equal(addressKey('2001:db8:1:3::1'), '2001:db8:1:3::/64', 'another /64');
  t.equal(addressKey('::1'), '0:0:0:0::/64');
  t.equal(addressKey(''), '', 'unknown stays as it is');
});
