import { once } from 'node:events';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import t from 'tap';
import { sessionKeys } from '../../src/store/redis-scripts.js';
import { synthesizeToneAudio } from '../../src/vosk-model/tone-audio.js';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';
import type { TestClient } from '../kit/ws-client.js';
import { crash, startOn } from '../store/persistence-kit.js';
import { startRedis } from './redis-kit.js';

// The real recogniser (libvosk on the generated tone model) on two nodes sharing one Redis: the open
// recording's segments recognised on node A before its SIGKILL are part of the message finished on node B.

function sendAudio(client: TestClient, pcm: Buffer): void {
  for (let offset = 0; offset < pcm.byteLength; offset += 3200) client.sendRaw(pcm.subarray(offset, offset + 3200), true);
}

/**
 * Reads until `done(value)`, reading again after each keyspace notification. The wait for the next
 * notification is armed before each read: the notification and the read's reply come on two sockets in
 * either order, so arming it after the read could miss the last write and wait forever.
 */
async function readWhenWritten<T>(watcher: Redis, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const signal = AbortSignal.timeout(timeoutMs);
  for (;;) {
    const written = once(watcher, 'message', { signal });
    written.catch(() => {}); // observed below, or abandoned once done
    const value = await read();
    if (done(value)) return value;
    try {
      await written;
    } catch (cause) {
      throw new Error(`Redis did not reach the expected state within ${timeoutMs} ms; last read: ${JSON.stringify(value)}`, { cause });
    }
  }
}

t.test('SIGKILL of node A mid-recording: "alpha bravo" recognised on A, "charlie" on B, one message with all three', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'always' });
  const modelDir = t.testdir();
  await writeToneModel(modelDir);
  const env = {
    STT_ENGINE: 'vosk', VOSK_MODEL_PATH: modelDir, MAX_WORKERS: '1',
    SESSION_STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'vosk:', REDIS_LEASE_MS: '1000',
  };
  const [a, b] = await Promise.all([startOn(t, join(modelDir, 'data-a'), { ...env, NODE_ID: 'node-a' }), startOn(t, join(modelDir, 'data-b'), { ...env, NODE_ID: 'node-b' })]);

  const client = await a.connect({ extensions: 'all' });
  const sessionId = await client.startConversation({ response_count: 2 });
  // Watch the session's segment list in Redis (keyspace notifications: an event per write, no polling).
  const segmentsKey = sessionKeys('vosk:', sessionId)[4]!;
  const reader = new Redis(redis.url);
  const watcher = new Redis(redis.url);
  t.teardown(() => {
    reader.disconnect();
    watcher.disconnect();
  });
  await reader.config('SET', 'notify-keyspace-events', 'Kl');
  await watcher.subscribe(`__keyspace@0__:${segmentsKey}`);

  client.send('message_start', { session_id: sessionId, sender: 'other' });
  await client.next('status_update');
  // Gaps of 900 ms: the endpointer (0.5 s of trailing silence) closes a segment after each word.
  sendAudio(client, synthesizeToneAudio(['alpha', 'bravo'], { gapMs: 900 }));
  await client.waitFor((e) => e.type === 'transcript_partial' && e.data.text === 'alpha bravo');
  const stored = await readWhenWritten(watcher, () => reader.lrange(segmentsKey, 0, -1), (list) => list.length >= 2);
  t.same(stored, ['alpha', 'bravo'], 'both segments are in Redis, written as they were recognised');

  await crash(a);

  const resumed = await b.connect({ extensions: 'all' });
  resumed.send('session_resume', { session_id: sessionId });
  t.match((await resumed.waitFor((e) => e.type === 'session_restored', 20_000)).data, { session_id: sessionId, status: 'recording_message', message_count: 0 });
  t.match((await resumed.next('status_update')).data, { status: 'recording_message' });
  sendAudio(resumed, synthesizeToneAudio(['charlie']));
  const partial = await resumed.waitFor((e) => e.type === 'transcript_partial' && /charlie/.test(e.data.text));
  t.equal(partial.data.text, 'alpha bravo charlie', 'partials on node B carry the segments recognised on node A');
  resumed.send('message_end', { session_id: sessionId });
  const recorded = await resumed.next('message_recorded');
  t.same(recorded.data, { session_id: sessionId, message_id: 'msg_001', message_content: 'alpha bravo charlie', sender: 'other' });
});
