import type { HttpRequest } from 'uWebSockets.js';

/**
 * Reads and checks everything voxgate takes from a WebSocket upgrade request, synchronously (uWS's
 * HttpRequest is only valid during the callback) and before anything else looks at it. Pure: no
 * state, no logging; ws-handler.ts answers a refusal.
 */

/** Longest client id in `/ws/<client_id>`, in characters after percent-decoding. It is a label copied into every log line. */
export const MAX_CLIENT_ID_CHARS = 128;
// A percent-encoded character takes at most 12 bytes (4 UTF-8 bytes, 3 characters each): anything
// longer cannot decode to an acceptable id, so it is refused before decoding.
const MAX_RAW_CLIENT_ID_CHARS = MAX_CLIENT_ID_CHARS * 12;
/** Longest `extensions` query value worth reading (the names of every extension fit many times over). */
const MAX_RAW_EXTENSIONS_CHARS = 1024;
/** A Sec-WebSocket-Protocol entry carrying a credential (browsers cannot set headers on a WebSocket). */
export const TOKEN_PROTOCOL_PREFIX = 'voxgate.token.';
/** Longest credential read from any carrier (a JWT with grants is well under 2 KiB). */
const MAX_RAW_CREDENTIAL_CHARS = 8192;

// Control, format, private-use, unassigned and lone-surrogate characters: nothing a label needs, and
// some of them rewrite what a terminal shows.
const UNSAFE_LABEL_CHARS = /\p{C}/u;
const WEBSOCKET_KEY = /^[A-Za-z0-9+/]{22}==$/;
// RFC 7230 token characters: what a subprotocol name may contain.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export interface UpgradeRequest {
  url: string;
  origin: string;
  key: string;
  /** The one subprotocol echoed back (the first one offered that is not a credential, see below), or ''. */
  protocol: string;
  /**
   * The credential the client brought, or null: from `Authorization: Bearer`, else a `voxgate.token.`
   * subprotocol entry, else the `access_token` query parameter. Never logged.
   */
  credential: string | null;
  extensionsHeader: string;
  clientId: string | null;
  /** The decoded `extensions` query value, or null when absent. */
  extensionsQuery: string | null;
  forwardedFor: string | null;
}

export type UpgradeRefusal = { status: '400 Bad Request' | '426 Upgrade Required'; reason: string };

export type UpgradeParse = { ok: true; request: UpgradeRequest } | { ok: false; refusal: UpgradeRefusal };

/** decodeURIComponent without the throw: null for a malformed escape (`%`, `%zz`, `abc%`, a cut UTF-8 sequence). */
export function decodePercentEscapes(raw: string): string | null {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch (err) {
    if (err instanceof URIError) return null;
    throw err;
  }
}

function refuse(reason: string, status: UpgradeRefusal['status'] = '400 Bad Request'): UpgradeParse {
  return { ok: false, refusal: { status, reason } };
}

/** `clientIdRaw` is the route's `:clientId` parameter for `/ws/<id>`, null on the other paths. */
export function parseUpgradeRequest(req: HttpRequest, clientIdRaw: string | null): UpgradeParse {
  const url = req.getUrl();

  let clientId: string | null = null;
  if (clientIdRaw !== null && clientIdRaw !== '') {
    if (clientIdRaw.length > MAX_RAW_CLIENT_ID_CHARS) return refuse(`client id longer than ${MAX_CLIENT_ID_CHARS} characters`);
    const decoded = decodePercentEscapes(clientIdRaw);
    if (decoded === null) return refuse('malformed percent-escape in the path');
    if ([...decoded].length > MAX_CLIENT_ID_CHARS) return refuse(`client id longer than ${MAX_CLIENT_ID_CHARS} characters`);
    if (UNSAFE_LABEL_CHARS.test(decoded)) return refuse('client id contains control or invisible characters');
    clientId = decoded;
  }

  let extensionsQuery: string | null = null;
  const rawExtensions = queryValue(req.getQuery() ?? '', 'extensions');
  if (rawExtensions !== null) {
    if (rawExtensions.length > MAX_RAW_EXTENSIONS_CHARS) return refuse(`extensions parameter longer than ${MAX_RAW_EXTENSIONS_CHARS} characters`);
    extensionsQuery = decodePercentEscapes(rawExtensions.replaceAll('+', ' '));
    if (extensionsQuery === null) return refuse('malformed percent-escape in the query string');
  }

  const version = req.getHeader('sec-websocket-version');
  if (version !== '13') return refuse('unsupported Sec-WebSocket-Version (this server speaks 13)', '426 Upgrade Required');
  const key = req.getHeader('sec-websocket-key');
  if (!WEBSOCKET_KEY.test(key)) return refuse('invalid Sec-WebSocket-Key (expected 16 bytes in base64)');

  const offered = req.getHeader('sec-websocket-protocol');
  let protocol = '';
  let protocolCredential: string | null = null;
  if (offered !== '') {
    if (offered.length > MAX_RAW_CREDENTIAL_CHARS + 1024) return refuse('Sec-WebSocket-Protocol too long');
    const entries = offered.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
    const tokenEntry = entries.find((entry) => entry.startsWith(TOKEN_PROTOCOL_PREFIX));
    if (tokenEntry !== undefined) protocolCredential = tokenEntry.slice(TOKEN_PROTOCOL_PREFIX.length);
    // RFC 6455 4.2.2: the server selects at most one of the offered subprotocols. voxgate defines none,
    // but browsers and `ws` fail a handshake that answers an offer with no subprotocol, so the first one
    // offered is echoed (never the whole list), and never a credential entry when the client offered
    // anything else: a browser client sends `voxgate, voxgate.token.<token>` and gets `voxgate` back.
    // A client that offers only the credential entry gets it back (the only answer it accepts) on its
    // own connection; nothing logs it.
    const chosen = entries.find((entry) => !entry.startsWith(TOKEN_PROTOCOL_PREFIX)) ?? tokenEntry ?? entries[0] ?? '';
    if (!TOKEN.test(chosen)) return refuse('invalid Sec-WebSocket-Protocol');
    protocol = chosen;
  }

  let credential: string | null = null;
  const authorization = req.getHeader('authorization');
  const bearer = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
  if (bearer) credential = bearer[1]!;
  else if (protocolCredential !== null) credential = protocolCredential;
  else {
    const rawToken = queryValue(req.getQuery() ?? '', 'access_token');
    if (rawToken !== null) {
      if (rawToken.length > MAX_RAW_CREDENTIAL_CHARS * 3) return refuse('access_token parameter too long');
      credential = decodePercentEscapes(rawToken);
      if (credential === null) return refuse('malformed percent-escape in the query string');
    }
  }

  const forwardedFor = forwardedForHeader(req);
  return {
    ok: true,
    request: {
      url,
      origin: req.getHeader('origin'),
      key,
      protocol,
      credential,
      extensionsHeader: req.getHeader('sec-websocket-extensions'),
      clientId,
      extensionsQuery,
      forwardedFor: forwardedFor === '' ? null : forwardedFor,
    },
  };
}

/**
 * Every X-Forwarded-For line, joined in order (RFC 9110 5.3: repeated lines are one comma-separated list).
 * getHeader() returns only the first line, which the client wrote: a proxy that adds a line of its own
 * instead of appending to the client's (HAProxy's `option forwardfor`) would let the client pick its address.
 */
function forwardedForHeader(req: HttpRequest): string {
  let joined = '';
  let lines = 0;
  req.forEach((name, value) => {
    if (name !== 'x-forwarded-for') return;
    joined = lines === 0 ? value : `${joined}, ${value}`;
    lines++;
  });
  return joined;
}

/** The raw (still percent-encoded) value of the first `name=` parameter of a query string, or null. */
function queryValue(query: string, name: string): string | null {
  if (query === '') return null;
  const prefix = `${name}=`;
  for (const part of query.split('&')) {
    if (part === name) return '';
    if (part.startsWith(prefix)) return part.slice(prefix.length);
  }
  return null;
}
