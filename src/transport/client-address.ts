import { BlockList, isIP } from 'node:net';

/** Which peers may tell us the client's address in X-Forwarded-For. */
export interface ProxyTrust {
  /** TRUST_PROXY: whatever the peer is (voxgate is reachable only through its own proxy). */
  readonly trustAnyPeer: boolean;
  /** TRUSTED_PROXIES: these addresses and networks, or null. */
  readonly trustedProxies: BlockList | null;
}

/**
 * The client's address for a connection. X-Forwarded-For is read only when the TCP peer is a proxy we
 * trust (any peer with TRUST_PROXY, or one in TRUSTED_PROXIES); otherwise the address is the peer's. Read
 * from the right: each proxy (nginx `proxy_add_x_forwarded_for`, HAProxy `option forwardfor`) appends the
 * address it saw, and everything left of the last proxy we trust came from the client and can be forged,
 * so the first entry from the right that is not one of our proxies is the client. An entry that is not
 * an IP address falls back to the peer's.
 */
export function clientAddress(peerAddress: string, forwardedFor: string | null, trust: ProxyTrust): string {
  if (forwardedFor === null) return peerAddress;
  if (!trust.trustAnyPeer && !isTrustedProxy(trust, peerAddress)) return peerAddress;
  const hops = forwardedFor.split(',');
  for (let index = hops.length - 1; index >= 0; index--) {
    const hop = hops[index]!.trim();
    if (isIP(hop) === 0) return peerAddress;
    if (index > 0 && isTrustedProxy(trust, hop)) continue;
    return hop;
  }
  return peerAddress;
}

/**
 * TRUSTED_PROXIES entries (IP addresses or CIDR networks, IPv4 or IPv6) as a BlockList; null for none.
 * Throws a RangeError naming the first entry that is neither.
 */
export function trustedProxyList(entries: readonly string[]): BlockList | null {
  if (entries.length === 0) return null;
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    const bits = prefix === undefined ? null : Number(prefix);
    const maxBits = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (bits !== null && (!/^\d+$/.test(prefix!) || bits > maxBits))) {
      throw new RangeError(`"${entry}" is not an IP address or CIDR network`);
    }
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === null) list.addAddress(address, type);
    else list.addSubnet(address, bits, type);
  }
  return list;
}

/** BlockList matches an IPv4-mapped IPv6 address (a dual-stack socket's peer, in any spelling) against IPv4 rules. */
function isTrustedProxy(trust: ProxyTrust, address: string): boolean {
  const family = isIP(address);
  if (trust.trustedProxies === null || family === 0) return false;
  return trust.trustedProxies.check(address, family === 6 ? 'ipv6' : 'ipv4');
}
