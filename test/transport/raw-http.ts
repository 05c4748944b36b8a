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
  const closed = once(socket, 'close');
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
