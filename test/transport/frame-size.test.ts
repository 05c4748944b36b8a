import t from 'tap';
import { payloadLimitBytes } from '../../src/transport/ws-handler.js';
import { startTestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

// The largest frame defaults to 16 MiB, as the replaced backend allowed (issue 11 #6); above it the
// connection is closed with 1009 and a reason.

t.test('default WEBSOCKET_MAX_MESSAGE_SIZE: a 12 MiB frame is taken, a frame over 16 MiB gets 1009', async (t) => {
  const server = await startTestServer({ AUTO_SUGGEST: 'false' });
  t.teardown(() => server.close());
  t.equal(server.config.websocket.maxMessageBytes, 16 * 1024 * 1024);

  const client = await TestClient.connect(server.wsUrl());
  t.teardown(() => client.close());
  const sessionId = await client.startConversation();
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  await client.next('status_update');
  // 9 MiB of PCM is 12 MiB of base64: one frame (the old 1 MiB default closed the connection here).
  const pcmBytes = 9 * 1024 * 1024;
  client.send('audio_stream', { session_id: sessionId, audio_chunk: Buffer.alloc(pcmBytes).toString('base64') });
  client.send('message_end', { session_id: sessionId });
  const recorded = await client.next('message_recorded');
  t.match(recorded.data.message_content, new RegExp(`${pcmBytes} bytes`), 'the whole frame was recorded');

  client.sendRaw(Buffer.alloc(16 * 1024 * 1024 + 1), true);
  const closed = await client.closed;
  t.equal(closed.code, 1009);
  t.match(closed.reason, /WEBSOCKET_MAX_MESSAGE_SIZE=16777216/);
});

t.test('uWS takes frames up to twice the limit (at most the limit + 16 MiB) so ours can answer 1009 with a reason', async (t) => {
  t.equal(payloadLimitBytes(64 * 1024), 128 * 1024);
  t.equal(payloadLimitBytes(16 * 1024 * 1024), 32 * 1024 * 1024);
  t.equal(payloadLimitBytes(64 * 1024 * 1024), 80 * 1024 * 1024);
});
