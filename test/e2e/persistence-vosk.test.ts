import { once } from 'node:events';
import { watch } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { synthesizeToneAudio } from '../../src/vosk-model/tone-audio.js';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';
import { rawConnection } from '../store/store-fixtures.js';
import { crash, startOn } from '../store/persistence-kit.js';
import type { TestClient } from '../kit/ws-client.js';

// The real recogniser (libvosk on the generated tone model): text recognised into endpoint segments
// before a SIGKILL is part of the message finished after the restart.

function sendAudio(client: TestClient, pcm: Buffer): void {
  for (let offset = 0; offset < pcm.byteLength; offset += 3200) client.sendRaw(pcm.subarray(offset, offset + 3200), true);
}

t.test('SIGKILL mid-recording with Vosk: "alpha bravo" before, "charlie" after, one message with all three', async (t) => {
  const modelDir = t.testdir();
  await writeToneModel(modelDir);
  const dataDir = join(modelDir, 'data');
  const env = { STT_ENGINE: 'vosk', VOSK_MODEL_PATH: modelDir, MAX_WORKERS: '1' };

  const first = await startOn(t, dataDir, env);
  const client = await first.connect({ extensions: 'all' });
  const sessionId = await client.startConversation({ response_count: 2 });
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  await client.next('status_update');
  // Gaps of 900 ms: the endpointer (0.5 s of trailing silence) closes a segment after each word.
  sendAudio(client, synthesizeToneAudio(['alpha', 'bravo'], { gapMs: 900 }));

  // Both words are recognised; the second segment closes after the trailing silence that follows. Look in
  // the file (a second connection, as an operator would) each time the server writes to the data
  // directory, until both segments are there (no event on the wire tells a segment from a partial).
  const changes = watch(dataDir);
  t.teardown(() => changes.close());
  await client.waitFor((e) => e.type === 'transcript_partial' && e.data.text === 'alpha bravo');
  const db = rawConnection(t, join(dataDir, 'voxgate.db'), { readonly: true });
  const segments = db.prepare<[string], { text: string }>('SELECT text FROM recording_segments WHERE session_id = ? ORDER BY seq');
  let stored = segments.all(sessionId).map((row) => row.text);
  // Read, then wait for the next write: a write during the read is reported after it, so none is missed.
  while (stored.length < 2) {
    await once(changes, 'change');
    stored = segments.all(sessionId).map((row) => row.text);
  }
  changes.close();
  t.same(stored, ['alpha', 'bravo']);
  db.close();

  await crash(first);

  const second = await startOn(t, dataDir, env);
  const resumed = await second.connect({ extensions: 'all' });
  resumed.send('session_resume', { session_id: sessionId });
  t.match((await resumed.next('session_restored')).data, { session_id: sessionId, status: 'recording_message', message_count: 0 });
  t.match((await resumed.next('status_update')).data, { status: 'recording_message' });
  sendAudio(resumed, synthesizeToneAudio(['charlie']));
  const partial = await resumed.waitFor((e) => e.type === 'transcript_partial' && /charlie/.test(e.data.text));
  t.equal(partial.data.text, 'alpha bravo charlie', 'partials carry the stored segments');
  resumed.send('message_end', { session_id: sessionId });
  const recorded = await resumed.next('message_recorded');
  t.same(recorded.data, { session_id: sessionId, message_id: 'msg_001', message_content: 'alpha bravo charlie', sender: 'other' });
});
