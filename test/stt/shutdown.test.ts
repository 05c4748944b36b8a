import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { synthesizeToneAudio } from '../../src/vosk-model/tone-audio.js';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';
import { spawnServer } from '../kit/spawn-server.js';
import { TestClient } from '../kit/ws-client.js';

// SIGTERM with the real Vosk pool and a recording in progress: the drain ends, workers stop, exit 0.

t.test('SIGTERM during a recording with Vosk workers: close 1001, exit 0', async (t) => {
  const modelDir = mkdtempSync(join(tmpdir(), 'voxgate-model-'));
  await writeToneModel(modelDir);
  const server = spawnServer({ STT_ENGINE: 'vosk', VOSK_MODEL_PATH: modelDir, MAX_WORKERS: '2', SHUTDOWN_DRAIN_MS: '500' });
  t.teardown(() => server.kill());
  const port = await server.port;
  const client = await TestClient.connect(`ws://127.0.0.1:${port}/conversation`, { extensions: 'all' });
  const sessionId = await client.startConversation();
  client.send('message_start', { session_id: sessionId, sender: 'other' });
  client.send('audio_stream', { session_id: sessionId, audio_chunk: synthesizeToneAudio(['alpha'], { tailMs: 0 }).toString('base64') });
  await client.next('transcript_partial');
  server.kill('SIGTERM');
  t.equal((await client.closed).code, 1001);
  t.equal((await server.exited).code, 0);
  t.match(server.stdout(), /"msg":"shutdown complete"/);
});
