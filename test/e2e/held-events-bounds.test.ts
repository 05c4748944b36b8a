import t from 'tap';
import { startTestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

// Events naming a session another live connection is attached to are held for this connection's
// session_resume (the takeover rule, docs/protocol.md). A client that knows many session ids (its own,
// made on other connections) must not make the server hold 1 MiB for each: the bound is per connection,
// over all the sessions it names.

const CHUNK = Buffer.alloc(32_000).toString('base64'); // 1 s of 16 kHz PCM16

t.test('held audio is bounded per connection over all the sessions it names, one SESSION_NOT_FOUND per session past it', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close());
  const owner = await TestClient.connect(server.wsUrl());
  t.teardown(() => owner.close());
  const sessions = [await owner.startConversation(), await owner.startConversation(), await owner.startConversation()];

  const holder = await TestClient.connect(server.wsUrl('/ws/holder'));
  t.teardown(() => holder.close());
  // 20 chunks (640,000 bytes) per session: the first session's fit the 1 MiB bound, 12 more of the second's.
  for (const sessionId of sessions) for (let i = 0; i < 20; i++) holder.send('audio_stream', { session_id: sessionId, audio_chunk: CHUNK });
  // Frames of a connection are handled in order: its own session_created comes after every reply above.
  await holder.startConversation();
  const errors = holder.received.filter((event) => event.type === 'error');
  t.same(
    errors.map((event) => [event.data.error_code, event.data.session_id]),
    [['SESSION_NOT_FOUND', sessions[1]], ['SESSION_NOT_FOUND', sessions[2]]],
    'the second session overflowed the connection bound, the third did not fit at all',
  );

  // What was held still runs at the resume: the first session's 20 chunks (its recording-less audio is
  // dropped with the one NOT_RECORDING of its stretch), and the owner saw none of it.
  holder.send('session_resume', { session_id: sessions[0] });
  t.equal((await holder.next('session_restored')).data.session_id, sessions[0]);
  t.match(await holder.next('error'), { data: { error_code: 'NOT_RECORDING', session_id: sessions[0] } });
  owner.send('get_message_history', { session_id: sessions[2] });
  await owner.next('message_history_response');
  t.same(owner.pending(), [], 'the owner got nothing from the holder');
});
