import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { signToken } from '../../src/auth/sign-token.js';
import { startTestServer, type TestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';
import { rawExchange, upgradeRequest } from '../transport/raw-http.js';

// Issue 14, credentials: checked at the upgrade on every WebSocket path; a missing, bad or expired one
// gets HTTP 401 and nothing else; each of the three carriers works; no credential reaches a log line.

const KEY_A = 'vxk_live_7b1e5d0c3a9f4e28b6d1c0aa';
const KEY_B = 'vxk_live_second_key_0123456789ab';
const SECRET = 'an-hs256-secret-of-at-least-32-characters!';
const PATHS = ['/conversation', '/conservation', '/ws', '/ws/phone-1'];

/** The HTTP status an upgrade got: 101 when the socket opened. */
async function upgradeStatus(server: TestServer, path: string, options: Parameters<typeof TestClient.connect>[1] = {}): Promise<number> {
  try {
    const client = await TestClient.connect(server.wsUrl(path), options);
    await client.close();
    return 101;
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status === undefined) throw err;
    return status;
  }
}

/** Asserts that no log line the server wrote contains any of `secrets`, at any level. */
function assertNoSecretLogged(t: Test, server: TestServer, secrets: readonly string[]): void {
  const text = JSON.stringify(server.logs);
  for (const secret of secrets) t.notOk(text.includes(secret), `no log line contains ${secret.slice(0, 12)}...`);
}

t.test('credentials off (the default): anyone connects, and the start-up log says so', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  t.equal(await upgradeStatus(server, '/conversation'), 101);
  t.match(await server.waitForLog((line) => line.msg?.toString().startsWith('credentials are off') ?? false), { level: 40, credentials: { enabled: false } });
});

t.test('API keys: no or a bad key gets 401 on every path; each carrier works', async (t) => {
  const server = await startTestServer({ AUTH_API_KEYS: `${KEY_A}, ${KEY_B}`, LOG_LEVEL: 'trace' });
  t.teardown(() => server.close());
  t.match(await server.waitForLog((line) => line.msg === 'credentials required at the WebSocket upgrade'), { credentials: { enabled: true, apiKeys: 2 } });

  for (const path of PATHS) {
    t.equal(await upgradeStatus(server, path), 401, `${path}: no credential`);
    t.equal(await upgradeStatus(server, path, { headers: { Authorization: 'Bearer wrong-key' } }), 401, `${path}: bad key`);
    t.equal(await upgradeStatus(server, path, { headers: { Authorization: `Basic ${KEY_A}` } }), 401, `${path}: not a Bearer credential`);
    t.equal(await upgradeStatus(server, `${path}?access_token=${KEY_A}x`), 401, `${path}: bad query key`);
    t.equal(await upgradeStatus(server, path, { headers: { Authorization: `Bearer ${KEY_A}` } }), 101, `${path}: Authorization header`);
    t.equal(await upgradeStatus(server, `${path}?access_token=${encodeURIComponent(KEY_B)}`), 101, `${path}: access_token query`);
    t.equal(await upgradeStatus(server, path, { protocols: [`voxgate.token.${KEY_A}`] }), 101, `${path}: subprotocol`);
  }

  // A 401 is the whole answer: a JSON body, a WWW-Authenticate challenge, no upgrade.
  const raw = await rawExchange(server.port, upgradeRequest('/conversation', { Authorization: 'Bearer nope' }));
  t.equal(raw.status, 401);
  t.match(raw.text, /WWW-Authenticate: Bearer realm="voxgate", error="invalid_token"/i);
  t.notMatch(raw.text, /101 Switching Protocols/);

  // The browser's way: offer a plain protocol with the credential entry; only the plain one comes back.
  const browserLike = await TestClient.connect(server.wsUrl(), { protocols: ['voxgate', `voxgate.token.${KEY_A}`] });
  t.equal(browserLike.socket.protocol, 'voxgate', 'the credential entry is not echoed when another was offered');
  const sessionId = await browserLike.startConversation();
  t.ok(sessionId, 'the connection works');
  await browserLike.close();
  // A client that offers only the credential entry must get a subprotocol back (RFC 6455 clients such as
  // ws and browsers fail the handshake otherwise): it gets its own entry.
  const onlyToken = await TestClient.connect(server.wsUrl(), { protocols: [`voxgate.token.${KEY_B}`] });
  t.equal(onlyToken.socket.protocol, `voxgate.token.${KEY_B}`);
  await onlyToken.close();

  const opened = server.logs.filter((line) => line.msg === 'connection opened');
  t.ok(opened.length > 0 && opened.every((line) => typeof line.owner === 'string' && (line.owner as string).startsWith('key:')), 'connections are logged with the key owner');
  t.ok(server.logs.some((line) => line.msg === 'websocket upgrade refused' && line.reason === 'credential missing'));
  t.ok(server.logs.some((line) => line.msg === 'websocket upgrade refused' && line.reason === 'credential invalid'));
  assertNoSecretLogged(t, server, [KEY_A, KEY_B]);
});

t.test('HS256 tokens: valid ones pass, expired, forged, sub-less and exp-less ones get 401', async (t) => {
  const server = await startTestServer({ AUTH_JWT_SECRET: SECRET, LOG_LEVEL: 'trace' });
  t.teardown(() => server.close());
  const good = await signToken(SECRET, { sub: 'alice', ttl: '1h' });
  const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime(Math.floor(Date.now() / 1000) - 3600).sign(new TextEncoder().encode(SECRET));
  const forged = await signToken('another-secret-that-is-also-32-chars-long', { sub: 'alice', ttl: '1h' });
  const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').sign(new TextEncoder().encode(SECRET));
  const noSub = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
  const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"alice","exp":9999999999}').toString('base64url')}.`;
  const asrOnly = await signToken(SECRET, { sub: 'alice', ttl: '1h', endpoints: ['asr'] });

  for (const path of PATHS) {
    t.equal(await upgradeStatus(server, path, { headers: { Authorization: `Bearer ${good}` } }), 101, `${path}: header`);
    t.equal(await upgradeStatus(server, `${path}?access_token=${good}`), 101, `${path}: query`);
    t.equal(await upgradeStatus(server, path, { protocols: ['voxgate', `voxgate.token.${good}`] }), 101, `${path}: subprotocol`);
    t.equal(await upgradeStatus(server, path), 401, `${path}: missing`);
    t.equal(await upgradeStatus(server, path, { headers: { Authorization: `Bearer ${expired}` } }), 401, `${path}: expired`);
    t.equal(await upgradeStatus(server, `${path}?access_token=${forged}`), 401, `${path}: forged`);
    t.equal(await upgradeStatus(server, path, { protocols: [`voxgate.token.${noExp}`] }), 401, `${path}: no exp`);
    t.equal(await upgradeStatus(server, path, { headers: { Authorization: `Bearer ${noSub}` } }), 401, `${path}: no sub`);
    t.equal(await upgradeStatus(server, `${path}?access_token=${unsigned}`), 401, `${path}: alg none`);
    t.equal(await upgradeStatus(server, path, { headers: { Authorization: `Bearer ${asrOnly}` } }), 403, `${path}: not granted`);
  }
  t.ok(server.logs.some((line) => line.reason === 'credential expired'), 'an expired token is logged as expired');
  t.ok(server.logs.some((line) => line.msg === 'connection opened' && line.owner === 'sub:alice'));
  assertNoSecretLogged(t, server, [good, expired, forged, noExp, noSub, asrOnly, SECRET]);
});

t.test('AUTH_JWT_JWKS_FILE: EdDSA, ES256 and RS256 tokens from the listed keys pass; others get 401', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-jwks-'));
  const algorithms = ['EdDSA', 'ES256', 'RS256'] as const;
  const pairs = await Promise.all(algorithms.map((alg) => generateKeyPair(alg, { extractable: true })));
  const stranger = await generateKeyPair('ES256');
  const keys = await Promise.all(pairs.map(async (pair, i) => ({ ...(await exportJWK(pair.publicKey)), kid: `k${i}`, alg: algorithms[i] })));
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys }));
  const server = await startTestServer({ AUTH_JWT_JWKS_FILE: jwksFile });
  t.teardown(() => server.close());

  for (const [i, alg] of algorithms.entries()) {
    const token = await new SignJWT({}).setProtectedHeader({ alg, kid: `k${i}` }).setSubject(`user-${alg}`).setExpirationTime('5m').sign(pairs[i]!.privateKey);
    t.equal(await upgradeStatus(server, '/conversation', { headers: { Authorization: `Bearer ${token}` } }), 101, alg);
  }
  const foreign = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject('mallory').setExpirationTime('5m').sign(stranger.privateKey);
  t.equal(await upgradeStatus(server, '/conversation', { headers: { Authorization: `Bearer ${foreign}` } }), 401, 'a key not in the set');
  const hs = await signToken(SECRET, { sub: 'alice', ttl: '1h' });
  t.equal(await upgradeStatus(server, '/conversation', { headers: { Authorization: `Bearer ${hs}` } }), 401, 'HS256 without AUTH_JWT_SECRET');
});

t.test('a JWKS file with a private key, or an unreadable keys file, fails start-up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-jwks-'));
  const pair = await generateKeyPair('ES256', { extractable: true });
  const jwksFile = join(dir, 'private.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [await exportJWK(pair.privateKey)] }));
  await t.rejects(startTestServer({ AUTH_JWT_JWKS_FILE: jwksFile }), { code: 'CONFIG_INVALID' });
  await t.rejects(startTestServer({ AUTH_API_KEYS_FILE: join(dir, 'missing.txt') }), { code: 'CONFIG_INVALID' });
});

t.test('npm run token: prints a token the server accepts for that sub; refuses without a secret', async (t) => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { jwtVerify } = await import('jose');
  const run = (env: Record<string, string>) =>
    promisify(execFile)(process.execPath, ['--import', import.meta.resolve('tsx'), 'src/auth/cli-token.ts', '--sub', 'alice', '--ttl', '1h', '--max-sessions', '3'], {
      cwd: join(import.meta.dirname, '../..'),
      env: { PATH: process.env.PATH ?? '', ...env },
    });
  const { stdout } = await run({ AUTH_JWT_SECRET: SECRET });
  const token = stdout.trim();
  const { payload } = await jwtVerify(token, new TextEncoder().encode(SECRET));
  t.match(payload, { sub: 'alice', grants: { max_sessions: 3 } });
  t.ok(payload.exp! - payload.iat! === 3600, 'expires in 1 h');
  const server = await startTestServer({ AUTH_JWT_SECRET: SECRET });
  t.teardown(() => server.close());
  t.equal(await upgradeStatus(server, '/conversation', { headers: { Authorization: `Bearer ${token}` } }), 101);
  await t.rejects(run({}), { code: 2 }, 'no AUTH_JWT_SECRET: exit 2');
});
