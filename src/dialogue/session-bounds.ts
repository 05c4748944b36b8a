import { AddressSessionLimitError, SessionCapacityError } from '../errors.js';

export interface SessionBoundsOptions {
  /** MAX_SESSIONS_PER_ADDRESS (default: no limit). */
  maxSessionsPerAddress?: number;
  /** MAX_SESSIONS: sessions in the store in all (default: no limit). */
  maxStoredSessions?: number;
  /** SESSION_MEMORY_MAX_MB in bytes: estimated memory of the sessions held (default: no limit). */
  maxMemoryBytes?: number;
  /** SESSION_STORE_MAX_MB in bytes: what the store's sessions take (default: no limit). */
  maxStoreBytes?: number;
}

/** How full the store is, asked only when a limit needs it. */
export interface StoreFill {
  sessions(): number;
  bytes(): number;
}

/**
 * The accounting behind the session limits, owned by SessionManager (which decides what is held and
 * asks here first): the estimated bytes of each session held in memory, and the sessions in existence
 * per client address since this process started. Each check throws the limit's own error; nothing here
 * changes state when a check fails.
 */
export class SessionBounds {
  readonly #maxPerAddress: number;
  readonly #maxStored: number;
  readonly #maxMemoryBytes: number;
  readonly #maxStoreBytes: number;
  readonly #heldBytes = new Map<string, number>();
  #heldBytesTotal = 0;
  readonly #sessionsByAddress = new Map<string, Set<string>>();
  readonly #addressOf = new Map<string, string>();

  constructor(options: SessionBoundsOptions) {
    this.#maxPerAddress = options.maxSessionsPerAddress ?? Number.POSITIVE_INFINITY;
    this.#maxStored = options.maxStoredSessions ?? Number.POSITIVE_INFINITY;
    this.#maxMemoryBytes = options.maxMemoryBytes ?? Number.POSITIVE_INFINITY;
    this.#maxStoreBytes = options.maxStoreBytes ?? Number.POSITIVE_INFINITY;
  }

  /** Estimated bytes of the sessions held in memory. */
  get heldBytes(): number {
    return this.#heldBytesTotal;
  }

  /** A new session from `address`: ADDRESS_SESSION_LIMIT, or SESSION_CAPACITY_EXCEEDED when the store is full. */
  assertCanCreate(address: string, store: StoreFill): void {
    const count = this.#sessionsByAddress.get(addressKey(address))?.size ?? 0;
    if (count >= this.#maxPerAddress) {
      throw new AddressSessionLimitError(
        `client address ${address} already has ${count} sessions (limit ${this.#maxPerAddress}); end one first`,
        { details: `max_sessions_per_address: ${this.#maxPerAddress}` },
      );
    }
    if (this.#maxStored !== Number.POSITIVE_INFINITY) {
      const stored = store.sessions();
      if (stored >= this.#maxStored) {
        throw new SessionCapacityError(`the server holds ${stored} sessions (limit ${this.#maxStored}); try again later`, {
          details: `max_sessions: ${this.#maxStored}`,
        });
      }
    }
    if (this.#maxStoreBytes !== Number.POSITIVE_INFINITY) {
      const bytes = store.bytes();
      if (bytes >= this.#maxStoreBytes) {
        throw new SessionCapacityError(`the stored sessions take ${bytes} bytes (limit ${this.#maxStoreBytes}); try again later`, {
          details: `session_store_max_bytes: ${this.#maxStoreBytes}`,
        });
      }
    }
  }

  /** Holding `bytes` more in memory: SESSION_CAPACITY_EXCEEDED past the limit. */
  assertMemoryFor(bytes: number): void {
    if (this.#heldBytesTotal + bytes > this.#maxMemoryBytes) {
      throw new SessionCapacityError(
        `the sessions in memory would take ${this.#heldBytesTotal + bytes} bytes (limit ${this.#maxMemoryBytes}); try again later`,
        { details: `session_memory_max_bytes: ${this.#maxMemoryBytes}` },
      );
    }
  }

  hold(sessionId: string, bytes: number): void {
    this.release(sessionId);
    this.#heldBytes.set(sessionId, bytes);
    this.#heldBytesTotal += bytes;
  }

  /** A held session took `bytes` more (text added after it was created or loaded). */
  grow(sessionId: string, bytes: number): void {
    const held = this.#heldBytes.get(sessionId);
    if (held === undefined) return;
    this.#heldBytes.set(sessionId, held + bytes);
    this.#heldBytesTotal += bytes;
  }

  release(sessionId: string): void {
    this.#heldBytesTotal -= this.#heldBytes.get(sessionId) ?? 0;
    this.#heldBytes.delete(sessionId);
  }

  isCounted(sessionId: string): boolean {
    return this.#addressOf.has(sessionId);
  }

  countForAddress(sessionId: string, peerAddress: string): void {
    const address = addressKey(peerAddress);
    let ids = this.#sessionsByAddress.get(address);
    if (!ids) {
      ids = new Set();
      this.#sessionsByAddress.set(address, ids);
    }
    ids.add(sessionId);
    this.#addressOf.set(sessionId, address);
  }

  /** The session no longer exists (ended or expired). */
  forget(sessionId: string): void {
    this.release(sessionId);
    const address = this.#addressOf.get(sessionId);
    if (address === undefined) return;
    this.#addressOf.delete(sessionId);
    const ids = this.#sessionsByAddress.get(address);
    ids?.delete(sessionId);
    if (ids?.size === 0) this.#sessionsByAddress.delete(address);
  }
}

/**
 * The unit the per-address limit counts: an IPv4 address (also when written IPv4-mapped, ::ffff:a.b.c.d),
 * or an IPv6 /64 network, since one IPv6 host usually has a whole /64 to pick addresses from.
 */
export function addressKey(address: string): string {
  const ipv4 = /(?:^|:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(address);
  if (ipv4) return ipv4[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::', 2);
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = address.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = address.includes('::')
    ? [...headGroups, ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'), ...tailGroups]
    : headGroups;
  if (groups.length !== 8) return address;
  const mapped = groups.slice(0, 6).join(':');
  if (/^(0+:){5}ffff$/.test(mapped)) {
    // IPv4-mapped in hex groups (uWebSockets.js writes every address as 8 groups).
    const high = parseInt(groups[6]!, 16);
    const low = parseInt(groups[7]!, 16);
    return [high >> 8, high & 255, low >> 8, low & 255].join('.');
  }
  return `${groups.slice(0, 4).map((group) => parseInt(group, 16).toString(16)).join(':')}::/64`;
}
