import { readFileSync } from 'node:fs';
import { createLocalJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { ApiKeySet, readKeysFile } from './api-keys.js';

/** What a credential may use and how much: the optional `grants` claim of a JWT (API keys get none). */
export interface Grants {
  /** null: every endpoint. */
  readonly endpoints: readonly Endpoint[] | null;
  readonly maxSessions: number | null;
  readonly maxGenerationsPerMinute: number | null;
}

export type Endpoint = 'conversation' | 'asr';

export interface Principal {
  /** Who owns what this connection creates: `sub:<sub>` for a JWT, `key:<digest prefix>` for an API key. */
  readonly owner: string;
  readonly grants: Grants;
}

export type AuthRefusal = 'missing' | 'invalid' | 'expired' | 'forbidden';

export type AuthResult = { readonly ok: true; readonly principal: Principal } | { readonly ok: false; readonly reason: AuthRefusal };

export interface AuthSettings {
  readonly apiKeys: readonly string[];
  readonly apiKeysFile: string | null;
  readonly jwtSecret: string | null;
  readonly jwksFile: string | null;
}

const NO_GRANTS: Grants = { endpoints: null, maxSessions: null, maxGenerationsPerMinute: null };
/** Algorithms accepted from AUTH_JWT_JWKS_FILE keys (`Ed25519` is EdDSA's newer, fully-specified name). */
const PUBLIC_KEY_ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'RS256'];
/** Clock difference tolerated between the token's issuer and this server, for exp and nbf. */
const CLOCK_TOLERANCE_SECONDS = 30;
// Three base64url parts: anything else is not worth handing to the JWT parser.
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** Longest credential looked at; a longer one is refused unread. */
export const MAX_CREDENTIAL_CHARS = 8192;

const GrantsClaim = z
  .object({
    endpoints: z.array(z.enum(['conversation', 'asr'])).optional(),
    max_sessions: z.number().int().min(1).optional(),
    max_generations_per_minute: z.number().int().min(1).optional(),
  })
  .optional();

/**
 * Decides, at the WebSocket upgrade, who a credential belongs to. Off (every connection is anonymous,
 * owner null) unless at least one of AUTH_API_KEYS, AUTH_API_KEYS_FILE, AUTH_JWT_SECRET or
 * AUTH_JWT_JWKS_FILE is set. API keys are checked synchronously; a JWT's signature check is async.
 * Never logs a credential.
 */
export class Authenticator {
  readonly #settings: AuthSettings;
  readonly #logger: Logger;
  readonly #keys: ApiKeySet;
  readonly #secret: Uint8Array | null;
  readonly #jwks: ReturnType<typeof createLocalJWKSet> | null;
  readonly #jwksKeyCount: number;

  constructor(settings: AuthSettings, logger: Logger) {
    this.#settings = settings;
    this.#logger = logger;
    this.#keys = new ApiKeySet([...settings.apiKeys, ...(settings.apiKeysFile === null ? [] : readKeysFileOrThrow(settings.apiKeysFile))]);
    this.#secret = settings.jwtSecret === null ? null : new TextEncoder().encode(settings.jwtSecret);
    const jwks = settings.jwksFile === null ? null : readJwksOrThrow(settings.jwksFile);
    this.#jwks = jwks === null ? null : createLocalJWKSet(jwks);
    this.#jwksKeyCount = jwks?.keys.length ?? 0;
  }

  /** Whether connections must bring a credential. */
  get enabled(): boolean {
    const s = this.#settings;
    return s.apiKeys.length > 0 || s.apiKeysFile !== null || s.jwtSecret !== null || s.jwksFile !== null;
  }

  /** For the start-up log: which mechanisms are on and how many keys, never a key. */
  describe(): Record<string, unknown> {
    return {
      enabled: this.enabled,
      apiKeys: this.#keys.size,
      apiKeysFile: this.#settings.apiKeysFile,
      jwtHs256: this.#secret !== null,
      jwksKeys: this.#jwksKeyCount,
    };
  }

  /**
   * Reads AUTH_API_KEYS_FILE again (SIGHUP): the new keys, together with AUTH_API_KEYS, replace the old
   * ones for every later upgrade. A file that cannot be read leaves the keys as they were.
   */
  reloadKeys(): { reloaded: boolean; keys: number } {
    const path = this.#settings.apiKeysFile;
    if (path === null) {
      this.#logger.info('SIGHUP: no AUTH_API_KEYS_FILE to reload');
      return { reloaded: false, keys: this.#keys.size };
    }
    let fromFile: string[];
    try {
      fromFile = readKeysFile(path);
    } catch (err) {
      this.#logger.error({ path, err: { message: (err as Error).message } }, 'SIGHUP: could not read AUTH_API_KEYS_FILE; the keys stay as they were');
      return { reloaded: false, keys: this.#keys.size };
    }
    this.#keys.replace([...this.#settings.apiKeys, ...fromFile]);
    this.#logger.info({ path, keys: this.#keys.size }, 'SIGHUP: API keys reloaded');
    return { reloaded: true, keys: this.#keys.size };
  }

  /** Checks a credential for `endpoint`. Synchronous for API keys and for refusals decided without crypto. */
  authenticate(credential: string | null, endpoint: Endpoint): AuthResult | Promise<AuthResult> {
    if (credential === null || credential === '') return { ok: false, reason: 'missing' };
    if (credential.length > MAX_CREDENTIAL_CHARS) return { ok: false, reason: 'invalid' };
    const keyOwner = this.#keys.match(credential);
    if (keyOwner !== null) return { ok: true, principal: { owner: keyOwner, grants: NO_GRANTS } };
    if ((this.#secret === null && this.#jwks === null) || !JWT_SHAPE.test(credential)) return { ok: false, reason: 'invalid' };
    return this.#verifyJwt(credential, endpoint);
  }

  async #verifyJwt(token: string, endpoint: Endpoint): Promise<AuthResult> {
    let payload: JWTPayload;
    try {
      const { alg } = decodeProtectedHeader(token);
      const options = { requiredClaims: ['sub', 'exp'], clockTolerance: CLOCK_TOLERANCE_SECONDS };
      if (alg === 'HS256' && this.#secret !== null) {
        ({ payload } = await jwtVerify(token, this.#secret, { ...options, algorithms: ['HS256'] }));
      } else if (alg !== undefined && PUBLIC_KEY_ALGORITHMS.includes(alg) && this.#jwks !== null) {
        ({ payload } = await jwtVerify(token, this.#jwks, { ...options, algorithms: PUBLIC_KEY_ALGORITHMS }));
      } else {
        return { ok: false, reason: 'invalid' };
      }
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) return { ok: false, reason: 'expired' };
      if (err instanceof joseErrors.JOSEError || err instanceof TypeError) return { ok: false, reason: 'invalid' };
      throw err;
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') return { ok: false, reason: 'invalid' };
    const grants = GrantsClaim.safeParse(payload['grants']);
    if (!grants.success) return { ok: false, reason: 'invalid' };
    const claimed = grants.data;
    const principal: Principal = {
      owner: `sub:${payload.sub}`,
      grants: {
        endpoints: claimed?.endpoints ?? null,
        maxSessions: claimed?.max_sessions ?? null,
        maxGenerationsPerMinute: claimed?.max_generations_per_minute ?? null,
      },
    };
    if (principal.grants.endpoints !== null && !principal.grants.endpoints.includes(endpoint)) return { ok: false, reason: 'forbidden' };
    return { ok: true, principal };
  }
}

function readKeysFileOrThrow(path: string): string[] {
  try {
    return readKeysFile(path);
  } catch (err) {
    throw new ConfigError(`AUTH_API_KEYS_FILE=${JSON.stringify(path)}: ${(err as Error).message}`, { cause: err });
  }
}

function readJwksOrThrow(path: string): JSONWebKeySet {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`AUTH_JWT_JWKS_FILE=${JSON.stringify(path)}: ${(err as Error).message}`, { cause: err });
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new ConfigError(`AUTH_JWT_JWKS_FILE=${JSON.stringify(path)}: expected a JWK Set ({"keys": [...]}) with at least one key`);
  }
  for (const key of keys as Array<Record<string, unknown>>) {
    if (key !== null && typeof key === 'object' && 'd' in key) {
      throw new ConfigError(`AUTH_JWT_JWKS_FILE=${JSON.stringify(path)}: holds a private key; give voxgate only the public keys`);
    }
  }
  return parsed as JSONWebKeySet;
}
