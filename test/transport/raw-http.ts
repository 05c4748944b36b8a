// Raw TCP for the transport tests: bytes no HTTP client library would send.
import { once } from 'node:events';
import { connect } from 'node:net';
import type { TestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

export interface RawReply {
  /** Everything the server sent before it closed the connection. */
  text: string;
  /** The status code of the first response, or null when the server answered nothing. */
  status: number | null;
}

/**
 * Sends `bytes` on a fresh TCP connection, half-closes it (so the server sees the end of the input,
 * answers what was complete and closes), and resolves with what came back once the socket is closed.
 */
export async function rawExchange(port: number, bytes: string | Buffer): Promise<RawReply> {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  // A reset is one of the answers a server may give garbage; the close that follows is what we wait for.
  socket.on('error', () => socket.destroy());
  await once(socket, 'connect');
  // Not events.once: it would reject on the 'error' (a reset) that comes before the close.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.end(bytes);
  await closed;
  const text = Buffer.concat(chunks).toString('latin1');
  const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
  return { text, status: match ? Number(match[1]) : null };
}

export const GOOD_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** A WebSocket upgrade request; `headers` replace or add lines (null drops a default one). */
export function upgradeRequest(path: string, headers: Record<string, string | null> = {}, extraLines = ''): string {
  const fields: Record<string, string | null> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': GOOD_KEY,
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  let text = `GET ${path} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(fields)) if (value !== null) text += `${name}: ${value}\r\n`;
  return `${text}${extraLines}\r\n`;
}

export function getRequest(path: string, method = 'GET', extraLines = ''): string {
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extraLines}\r\n`;
}

/**
 * What "the server still serves" means after an attack: /readyz answers 200 and a whole conversation
 * works (session, recording with audio, transcript, suggestions). Resolves with a description of the
 * first thing that failed, or null.
 */
export async function checkStillServes(server: TestServer): Promise<string | null> {
  const readyz = await fetch(`${server.httpUrl}/readyz`);
  if (readyz.status !== 200) return `/readyz answered ${readyz.status}`;
  const client = await TestClient.connect(server.wsUrl());
  try {
    const sessionId = await client.startConversation({ response_count: 2 });
    client.send('message_start', { session_id: sessionId, sender: 'other' });
    const recording = await client.next();
    if (recording.type !== 'status_update' || recording.data.status !== 'recording_message') return `message_start answered ${recording.type}`;
    client.send('audio_stream', { session_id: sessionId, audio_chunk: Buffer.alloc(32_000).toString('base64') });
    client.send('message_end', { session_id: sessionId });
    const recorded = await client.next('message_recorded');
    if (recorded.data.session_id !== sessionId) return 'message_recorded for another session';
    client.send('manual_generate', { session_id: sessionId });
    const response = await client.next('llm_response');
    if (!Array.isArray(response.data.suggestions) || response.data.suggestions.length === 0) return 'llm_response without suggestions';
    return null;
  } finally {
    await client.close();
  }
}

const FUZZ_PATHS = ['/', '/livez', '/readyz', '/api/health', '/conversation/health', '/conversation', '/conservation', '/ws', '/ws/phone', '/nope'];
const FUZZ_ESCAPES = ['%', '%zz', 'abc%', '%E0%A4%A', '%C0%AF', '%00', '%FF%FE', '%%', '%2', '%u0041', '%ED%A0%80'];

/**
 * `count` malformed HTTP requests of every kind (bad escapes in paths and queries, bad methods, huge and
 * repeated headers, invalid WebSocket handshakes, pipelined and random garbage), from a seeded PRNG so a
 * run can be replayed. For bench/edge-fuzz.ts; test/transport/http-fuzz.test.ts checks each kind by name.
 */
export function malformedHttpRequests(count: number, seed = 0x5eed): Array<string | Buffer> {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const kinds: Array<() => string | Buffer> = [
    () => getRequest(`${pick(FUZZ_PATHS)}/${pick(FUZZ_ESCAPES)}`),
    () => upgradeRequest(`/ws/${pick(FUZZ_ESCAPES)}${pick(FUZZ_ESCAPES)}`),
    () => upgradeRequest(`${pick(FUZZ_PATHS)}?extensions=${pick(FUZZ_ESCAPES)}`),
    () => getRequest(pick(FUZZ_PATHS), pick(['FOO', 'get', 'DELETE', 'PATCH', 'X'.repeat(1 + Math.floor(next() * 4096)), '\x00'])),
    () => getRequest('/readyz', 'GET', `X-Big: ${'a'.repeat(Math.floor(next() * 64 * 1024))}\r\n`),
    () => getRequest('/readyz', 'GET', 'X-R: v\r\n'.repeat(1 + Math.floor(next() * 2000))),
    () => upgradeRequest('/conversation', { 'Sec-WebSocket-Key': pick(['', 'short', '!!!!!!!!!!!!!!!!!!!!!!==', 'a'.repeat(1024)]) }),
    () => upgradeRequest('/conversation', { 'Sec-WebSocket-Version': pick([null, '', '8', '13, 8', 'abc']) }),
    () => upgradeRequest('/conversation', { 'Sec-WebSocket-Protocol': pick([',,,', 'a b', '"q"', 'p'.repeat(8192)]) }),
    () => upgradeRequest(`/ws/${'a'.repeat(129 + Math.floor(next() * 60 * 1024))}`),
    () => getRequest('/livez').repeat(1 + Math.floor(next() * 50)) + '\x00garbage\r\n\r\n',
    () => {
      const bytes = Buffer.alloc(1 + Math.floor(next() * 2048));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(next() * 256);
      return next() < 0.5 ? bytes : Buffer.concat([Buffer.from(`GET /ws/${pick(FUZZ_ESCAPES)} HTTP/1.1\r\n`), bytes]);
    },
  ];
  return Array.from({ length: count }, (_, i) => kinds[i % kinds.length]!());
}
