import { isIP } from 'node:net';

/**
 * The client's address for a connection. Without a trusted proxy it is the TCP peer's. With TRUST_PROXY
 * the proxy's X-Forwarded-For is used, and from it the LAST entry: a proxy such as nginx
 * (`proxy_add_x_forwarded_for`) appends the address it saw, while everything before it came from the
 * client and can be forged. An entry that is not an IP address falls back to the peer's.
 */
export function clientAddress(peerAddress: string, forwardedFor: string | null, trustProxy: boolean): string {
  if (!trustProxy || forwardedFor === null) return peerAddress;
  const last = forwardedFor.slice(forwardedFor.lastIndexOf(',') + 1).trim();
  return isIP(last) === 0 ? peerAddress : last;
}
