import { SignJWT } from 'jose';

/** Builds the token; used by `npm run token`. `ttl` is jose's time span: `90s`, `30m`, `1h`, `2d`. */
export async function signToken(
  secret: string,
  claims: { sub: string; ttl: string; endpoints?: string[]; maxSessions?: number; maxGenerationsPerMinute?: number },
): Promise<string> {
  const grants: Record<string, unknown> = {};
  if (claims.endpoints) grants.endpoints = claims.endpoints;
  if (claims.maxSessions !== undefined) grants.max_sessions = claims.maxSessions;
  if (claims.maxGenerationsPerMinute !== undefined) grants.max_generations_per_minute = claims.maxGenerationsPerMinute;
  return new SignJWT(Object.keys(grants).length > 0 ? { grants } : {})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(claims.ttl)
    .sign(new TextEncoder().encode(secret));
}

