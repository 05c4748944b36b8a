import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { writeBenchModel } from '../../src/vosk-model/bench-model.js';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';
import { spawnServer } from '../kit/spawn-server.js';

// The Vosk model is loaded once per server process and shared by every worker thread: four workers must
// not hold four copies of it. Each worker has its own V8 isolate (about 25 MB under tsx) whatever the
// model, so the part of the growth from 1 to 4 workers that the model explains is measured against the
// same growth with the tone model (a few KB). Four copies would add 3x the model; one adds nothing.

const MIB = 2 ** 20;
/** Float32 weights: libvosk (Kaldi BaseFloat) keeps every parameter in 4 bytes. */
const BYTES_PER_PARAMETER = 4;

function vmRssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** VmRSS of a voxgate server on `modelDir` with `workers`, once it listens (every worker started and warmed up). */
async function idleServerRss(t: Test, modelDir: string, workers: number): Promise<number> {
  const server = spawnServer({
    STT_ENGINE: 'vosk',
    VOSK_MODEL_PATH: modelDir,
    MAX_WORKERS: String(workers),
    LOG_LEVEL: 'info',
    SESSION_PERSISTENCE_ENABLED: 'false',
  });
  t.teardown(() => server.kill());
  // The engine's create() resolves only after every worker decoded its warm-up batch, and the server
  // logs "voxgate listening" after that.
  await server.port;
  const rss = vmRssBytes(server.child.pid!);
  server.kill();
  await server.exited;
  return rss;
}

t.test('four Vosk workers share one model load: the growth from 1 to 4 workers does not depend on the model size', async (t) => {
  const dir = t.testdir();
  const toneDir = join(dir, 'tone');
  const benchDir = join(dir, 'bench');
  await writeToneModel(toneDir);
  // ~64 MB of weights in memory: the idle RSS of a server varies by up to ~25 MiB from run to run (GC
  // timing, allocator arenas of the worker threads), so the model must be well above that to tell one
  // copy from four (a 16 MB model failed by chance on a loaded machine).
  const bench = await writeBenchModel(benchDir, { layers: 5, hidden: 2048 });
  const modelBytes = bench.parameterCount * BYTES_PER_PARAMETER;

  // Two servers at a time: memory figures do not depend on how busy the CPUs are.
  const [tone1, tone4] = await Promise.all([idleServerRss(t, toneDir, 1), idleServerRss(t, toneDir, 4)]);
  const [bench1, bench4] = await Promise.all([idleServerRss(t, benchDir, 1), idleServerRss(t, benchDir, 4)]);
  const perWorkerBaseline = tone4 - tone1;
  const modelExplained = bench4 - bench1 - perWorkerBaseline;
  t.comment(
    `model ${(modelBytes / MIB).toFixed(1)} MiB in memory; RSS tone 1/4 workers ${(tone1 / MIB).toFixed(0)}/${(tone4 / MIB).toFixed(0)} MiB, ` +
      `bench ${(bench1 / MIB).toFixed(0)}/${(bench4 / MIB).toFixed(0)} MiB; growth the model explains ${(modelExplained / MIB).toFixed(1)} MiB`,
  );
  // The model is in memory with one worker (the server loaded it); RSS at start-up varies by ~6 MiB.
  t.ok(bench1 - tone1 > modelBytes / 4, 'one worker: the bench model is resident');
  // Three more copies would add 3x the model; allow a third of that for noise (GC timing, allocator).
  t.ok(modelExplained < modelBytes, `growth from 1 to 4 workers beyond the per-worker baseline (${(modelExplained / MIB).toFixed(1)} MiB) is below one model (${(modelBytes / MIB).toFixed(1)} MiB)`);
});
