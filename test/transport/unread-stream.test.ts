import { once } from 'node:events';
import t from 'tap';
import WebSocket from 'ws';
import { startTestServer } from '../kit/start-server.js';

// Issue 11, "Done when": a client written for the replaced backend that never reads while it streams a
// long recording keeps its connection and gets its message_recorded. That client is Python `websockets`
// with its defaults: incoming messages go to a queue of at most 32 (max_queue); when the queue is full
// it stops reading the socket, so it no longer sees the pongs of its own keep-alive pings (every 20 s)
// nor answers the server's pings, and the connection dies. This client behaves the same way with `ws`.

const MAX_QUEUE = 32;
const SECOND_OF_AUDIO = Buffer.alloc(32_000).toString('base64');

class QueueBoundClient {
  readonly socket: WebSocket;
  readonly queue: Array<{ type: string; data: Record<string, any> }> = [];
  /** Resolves when the queue filled up and the client stopped reading (what breaks the Python client). */
  readonly stalled: Promise<'stalled'>;
  #onStall!: () => void;

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.stalled = new Promise((resolve) => {
      this.#onStall = () => resolve('stalled');
    });
    this.socket.on('message', (data) => {
      this.queue.push(JSON.parse(data.toString()) as { type: string; data: Record<string, any> });
      if (this.queue.length >= MAX_QUEUE) {
        // Reading stops: nothing more comes in, pings and pongs included.
        (this.socket as unknown as { _socket: { pause(): void } })._socket.pause();
        this.#onStall();
      }
    });
  }

  send(type: string, data: Record<string, unknown>): void {
    this.socket.send(JSON.stringify({ type, data }));
  }

  /** The application reads the next message (what `await ws.recv()` does). */
  async recv(): Promise<{ type: string; data: Record<string, any> }> {
    while (this.queue.length === 0) await once(this.socket, 'message');
    const message = this.queue.shift()!;
    if (this.queue.length < MAX_QUEUE) (this.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    return message;
  }

  /** A keep-alive ping, as `websockets` sends every ping_interval; resolves 'pong' or 'stalled'. */
  ping(): Promise<'pong' | 'stalled'> {
    const pong = once(this.socket, 'pong').then(() => 'pong' as const);
    this.socket.ping();
    return Promise.race([pong, this.stalled]);
  }
}

async function startRecording(url: string): Promise<{ client: QueueBoundClient; sessionId: string }> {
  const client = new QueueBoundClient(url);
  await once(client.socket, 'open');
  client.send('conversation_start', { response_count: 3 });
  const created = await client.recv();
  const sessionId = created.data.session_id as string;
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  const status = await client.recv();
  if (status.data.status !== 'recording_message') throw new Error(`expected recording_message, got ${JSON.stringify(status)}`);
  return { client, sessionId };
}

t.test('90 s of base64 audio streamed without reading, keep-alive pings every "20 s": pongs keep coming, message_recorded arrives', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  const { client, sessionId } = await startRecording(server.wsUrl());
  t.teardown(() => client.socket.terminate());

  // The app's pace is one chunk per second and a ping every 20 s: here the chunks go back to back and a
  // ping goes every 20 chunks, so the volume of unread events is the same without waiting 90 s.
  for (let second = 1; second <= 90; second++) {
    client.send('audio_stream', { session_id: sessionId, audio_chunk: SECOND_OF_AUDIO });
    if (second % 20 === 0) t.equal(await client.ping(), 'pong', `ping after ${second} s of audio answered`);
  }
  t.equal(await client.ping(), 'pong', 'ping at the end answered');
  client.send('message_end', { session_id: sessionId });
  // Now it reads, "the next event" at a time, as the old client does.
  t.match(await client.recv(), { type: 'status_update', data: { status: 'processing_stt' } });
  const recorded = await client.recv();
  t.match(recorded, { type: 'message_recorded', data: { session_id: sessionId, message_id: 'msg_001' } });
  t.match(recorded.data.message_content, /90\.00 s of audio/);
  t.equal(client.socket.readyState, WebSocket.OPEN, 'still connected');
});

t.test('the same client through a real server ping: it reads control frames while its queue has room', async (t) => {
  // WEBSOCKET_PING_INTERVAL=4: uWS pings a client that has been quiet for a few seconds (idle timeout 8 s).
  const server = await startTestServer({ WEBSOCKET_PING_INTERVAL: '4' });
  t.teardown(() => server.close());
  const { client, sessionId } = await startRecording(server.wsUrl());
  t.teardown(() => client.socket.terminate());
  for (let second = 1; second <= 40; second++) client.send('audio_stream', { session_id: sessionId, audio_chunk: SECOND_OF_AUDIO });

  // The app stays quiet and reads nothing until the server has pinged it (and `ws` answered with a pong).
  const outcome = await Promise.race([once(client.socket, 'ping').then(() => 'pinged' as const), client.stalled, once(client.socket, 'close').then(() => 'closed' as const)]);
  t.equal(outcome, 'pinged', 'the server pinged and the client could answer');
  client.send('message_end', { session_id: sessionId });
  t.match(await client.recv(), { type: 'status_update', data: { status: 'processing_stt' } });
  t.match(await client.recv(), { type: 'message_recorded', data: { session_id: sessionId } });
  t.equal(client.socket.readyState, WebSocket.OPEN, 'still connected');
});
