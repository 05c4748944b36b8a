import { once } from 'node:events';
import { connect } from 'node:net';
import t from 'tap';
import { startTestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

// No application-level idle timeout: a quiet client that answers pings stays; a dead peer is closed.

t.test('a quiet client that answers pings stays connected; a peer that never answers is dropped', async (t) => {
  // WEBSOCKET_PING_INTERVAL=4 gives uWS an idle timeout of 8 s (its minimum); it pings before that.
  const server = await startTestServer({ WEBSOCKET_PING_INTERVAL: '4' });
  t.teardown(() => server.close());

  const quiet = await TestClient.connect(server.wsUrl());
  t.teardown(() => quiet.close());
  const sessionId = await quiet.startConversation();
  let pings = 0;
  quiet.socket.on('ping', () => pings++);

  // A raw TCP peer that completes the handshake and then never reads or answers anything.
  const dead = connect(server.port, '127.0.0.1');
  await once(dead, 'connect');
  dead.write(
    'GET /conversation HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  const deadClosed = once(dead, 'close');
  dead.resume();

  await deadClosed;
  t.pass('the silent peer was closed by the server');
  // By now the quiet client has been silent for longer than the idle timeout too.
  t.ok(pings >= 1, 'the server pinged the quiet client');
  t.equal(quiet.socket.readyState, quiet.socket.OPEN, 'the quiet client is still connected');
  quiet.send('get_message_history', { session_id: sessionId });
  t.equal((await quiet.next()).type, 'message_history_response', 'and still served');
});
