import t from 'tap';
import { startTestServer, type TestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

// A recording whose connection left must not hold a recogniser until the session expires: after
// ORPHANED_RECORDING_GRACE_MS its text is kept and the recogniser released; resume continues it.

const audio = (ms: number) => Buffer.alloc(ms * 32).toString('base64');

/** Starts a recording with 1 s of audio on a new connection, then closes it; returns the session id. */
async function recordThenLeave(server: TestServer): Promise<string> {
  const client = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  const sessionId = await client.startConversation();
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  client.send('audio_stream', { session_id: sessionId, audio_chunk: audio(1000) });
  await client.next('transcript_partial');
  await client.close();
  return sessionId;
}

async function activeStreams(httpUrl: string): Promise<number> {
  const health = (await (await fetch(`${httpUrl}/api/health`)).json()) as Record<string, any>;
  return health.services.stt.active_streams as number;
}

t.test('an orphaned recording is parked after the grace period, and resume continues it', async (t) => {
  const graceMs = 1000;
  const server = await startTestServer({ ORPHANED_RECORDING_GRACE_MS: String(graceMs), AUTO_SUGGEST: 'false' });
  t.teardown(() => server.close());
  const sessionId = await recordThenLeave(server);

  // The log line says when the recogniser was released.
  const closed = await server.waitForLog((line) => line.msg === 'connection closed');
  const parked = await server.waitForLog((line) => line.msg === 'recording parked: no connection; its recogniser was released');
  // A timer never fires early, but its start is the event loop's cached time (up to one busy turn before
  // the close was logged): half the grace period cannot be lost that way, and "at once" would be 0 ms.
  t.ok((parked.time as number) - (closed.time as number) >= graceMs / 2, `parked ${(parked.time as number) - (closed.time as number)} ms after the connection left, not at once`);
  t.equal(await activeStreams(server.httpUrl), 0, 'the recogniser was released');

  const second = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  t.teardown(() => second.close());
  second.send('session_resume', { session_id: sessionId });
  t.match((await second.next('session_restored')).data, { status: 'recording_message' });
  second.send('audio_stream', { session_id: sessionId, audio_chunk: audio(500) });
  second.send('message_end', { session_id: sessionId });
  const recorded = await second.next('message_recorded');
  t.equal(
    recorded.data.message_content,
    '[mock transcript: 1.00 s of audio, 32000 bytes] [mock transcript: 0.50 s of audio, 16000 bytes]',
    'the text from before the parking and after the resume form one message',
  );
});

t.test('a client that comes back within the grace period keeps its recogniser', async (t) => {
  const server = await startTestServer({ ORPHANED_RECORDING_GRACE_MS: '60000', AUTO_SUGGEST: 'false' });
  t.teardown(() => server.close());
  const sessionId = await recordThenLeave(server);
  const second = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  t.teardown(() => second.close());
  second.send('session_resume', { session_id: sessionId });
  await second.next('session_restored');
  t.equal(await activeStreams(server.httpUrl), 1, 'the same stream goes on');
  second.send('message_end', { session_id: sessionId });
  t.equal((await second.next('message_recorded')).data.message_content, '[mock transcript: 1.00 s of audio, 32000 bytes]');
});
