import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';
import { spawnServer } from '../kit/spawn-server.js';

// Which speech engine runs, as an operator sees it: exit codes, messages, log lines and health.

async function health(port: number): Promise<Record<string, any>> {
  return (await (await fetch(`http://127.0.0.1:${port}/api/health`)).json()) as Record<string, any>;
}

/** A tone model whose model.conf lacks the option libvosk aborts without (vosk-test-model.md P8). */
async function brokenModel(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-broken-model-'));
  await writeToneModel(dir);
  const conf = join(dir, 'conf/model.conf');
  writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^--endpoint\.silence-phones=.*\n/m, ''));
  return dir;
}

t.test('STT_ENGINE=vosk with a missing model stops start-up and names the problem', async (t) => {
  const server = spawnServer({ STT_ENGINE: 'vosk', VOSK_MODEL_PATH: '/nonexistent/model', SESSION_PERSISTENCE_ENABLED: 'false' });
  t.teardown(() => server.kill());
  t.equal((await server.exited).code, 1);
  t.match(server.stderr(), /\/nonexistent\/model.*MODEL_INVALID/s);
});

t.test('STT_ENGINE=vosk with a model that crashes libvosk stops start-up; the check ran in a child', async (t) => {
  const server = spawnServer({ STT_ENGINE: 'vosk', VOSK_MODEL_PATH: await brokenModel(), SESSION_PERSISTENCE_ENABLED: 'false' });
  t.teardown(() => server.kill());
  const exit = await server.exited;
  t.equal(exit.code, 1, 'a clean exit with a message, not an abort of the server itself');
  t.match(server.stderr(), /SIGABRT.*silence-phones/s);
});

t.test('STT_ENGINE=auto falls back to the mock engine, loudly, when the model is unusable', async (t) => {
  const server = spawnServer({ STT_ENGINE: 'auto', VOSK_MODEL_PATH: await brokenModel(), SESSION_PERSISTENCE_ENABLED: 'false' });
  t.teardown(() => server.kill());
  const port = await server.port;
  t.match(server.stdout(), /"level":40[^\n]*falling back to the mock STT engine/);
  const report = await health(port);
  t.match(report.services.stt, { engine: 'mock', status: 'degraded', reason: /unusable/ });
});

t.test('STT_ENGINE=auto without a model folder runs the mock engine and says where the model was expected', async (t) => {
  const server = spawnServer({ VOSK_MODEL_PATH: '/nonexistent/model', SESSION_PERSISTENCE_ENABLED: 'false' });
  t.teardown(() => server.kill());
  const port = await server.port;
  t.match((await health(port)).services.stt, { engine: 'mock', reason: /no Vosk model at \/nonexistent\/model/ });
});

t.test('STT_ENGINE=auto with a good model runs Vosk; readyz is 200 once its workers are up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-model-'));
  await writeToneModel(dir);
  const server = spawnServer({ VOSK_MODEL_PATH: dir, MAX_WORKERS: '2', SESSION_PERSISTENCE_ENABLED: 'false' });
  t.teardown(() => server.kill());
  const port = await server.port;
  t.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
  t.match((await health(port)).services.stt, { engine: 'vosk', status: 'healthy', workers: 2, model_path: dir, active_streams: 0, queue_depth: 0, stream_limit: Number, refusing: null });
});
