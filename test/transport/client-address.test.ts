import t from 'tap';
import { clientAddress, trustedProxyList } from '../../src/transport/client-address.js';

const none = { trustAnyPeer: false, trustedProxies: null };
const anyPeer = { trustAnyPeer: true, trustedProxies: null };
const listed = (...entries: string[]) => ({ trustAnyPeer: false, trustedProxies: trustedProxyList(entries) });

t.test('without trust, X-Forwarded-For is never read', async (t) => {
  t.equal(clientAddress('203.0.113.5', '198.51.100.7', none), '203.0.113.5');
  t.equal(clientAddress('203.0.113.5', null, anyPeer), '203.0.113.5', 'no header: the peer');
});

t.test('TRUST_PROXY: the last entry, whatever the peer', async (t) => {
  t.equal(clientAddress('127.0.0.1', '198.51.100.66, 203.0.113.9', anyPeer), '203.0.113.9');
  t.equal(clientAddress('127.0.0.1', 'not-an-address', anyPeer), '127.0.0.1', 'garbage falls back to the peer');
});

t.test('TRUSTED_PROXIES: read only from a listed peer, skipping our own proxies from the right', async (t) => {
  const trust = listed('10.0.0.0/8', '2001:db8::/32', '192.0.2.1');
  t.equal(clientAddress('203.0.113.5', '198.51.100.7', trust), '203.0.113.5', 'a peer not in the list is the client itself');
  t.equal(clientAddress('10.1.2.3', '198.51.100.7', trust), '198.51.100.7', 'a listed peer: its entry');
  t.equal(clientAddress('10.1.2.3', '6.6.6.6, 198.51.100.7, 10.9.9.9, 192.0.2.1', trust), '198.51.100.7', 'two of our proxies in a row are skipped; the forged left entry is not reached');
  t.equal(clientAddress('::ffff:10.1.2.3', '198.51.100.7', trust), '198.51.100.7', 'an IPv4-mapped peer');
  t.equal(clientAddress('0000:0000:0000:0000:0000:ffff:0a01:0203', '198.51.100.7', trust), '198.51.100.7', 'the same peer as uWS writes it when listening on ::');
  t.equal(clientAddress('2001:db8::1', '2001:db8::2, 2606:4700::1111', trust), '2606:4700::1111', 'IPv6 networks');
  t.equal(clientAddress('10.1.2.3', '10.4.4.4', trust), '10.4.4.4', 'only proxies of ours: the leftmost is the client');
  t.equal(clientAddress('10.1.2.3', '198.51.100.7, junk', trust), '10.1.2.3', 'garbage falls back to the peer');
});

t.test('TRUSTED_PROXIES entries: addresses or CIDR networks, nothing else', async (t) => {
  t.equal(trustedProxyList([]), null);
  t.ok(trustedProxyList(['127.0.0.1', '::1', '10.0.0.0/8', 'fd00::/8']));
  for (const bad of ['localhost', '10.0.0.0/33', '::1/129', '10.0.0.0/8/1', '10.0.0.0/x', '300.1.1.1']) {
    t.throws(() => trustedProxyList([bad]), RangeError, bad);
  }
});
