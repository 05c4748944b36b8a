// How long voxgate takes from process start to /readyz 200, as an orchestrator or the app's reconnect
// loop (5 attempts over ~31 s) sees it. Runs the built server (`npm run build` first) as production does.
//
//   npx tsx bench/startup-time.ts [--runs 5] [--tone DIR] [--bench DIR]
//
// Configurations: the defaults (no model present: STT_ENGINE=auto falls back to the mock engine; SQLite
// store on), the tone model with 2 Vosk workers, and the bench model (npm run model:tone -- DIR --bench)
// with 2 workers. Prints one JSON line per configuration: median, min and max in ms.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../src/version.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, tone: { type: 'string' }, bench: { type: 'string' } } });
const runs = Number(values.runs);
const main = join(PROJECT_ROOT, 'dist/src/main.js');
if (!existsSync(main)) throw new Error('dist/src/main.js is missing: run npm run build first');

async function once_(env: Record<string, string>, port: number): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'voxgate-startup-'));
  const started = performance.now();
  const child = spawn(process.execPath, [main], {
    cwd: mkdtempSync(join(tmpdir(), 'voxgate-cwd-')),
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), SESSION_PERSISTENCE_DIR: dataDir, LOG_LEVEL: 'warn', ...env },
    stdio: 'ignore',
  });
  const exited = once(child, 'exit');
  try {
    // Polling is the measurement here: it is what a readiness probe does (every 5 ms).
    for (;;) {
      const status = await fetch(`http://127.0.0.1:${port}/readyz`).then((res) => res.status, () => 0);
      if (status === 200) return performance.now() - started;
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const configurations: Array<{ name: string; env: Record<string, string> }> = [{ name: 'defaults (no model: mock STT, SQLite store)', env: {} }];
if (values.tone) configurations.push({ name: 'tone model, 2 Vosk workers', env: { STT_ENGINE: 'vosk', VOSK_MODEL_PATH: values.tone, MAX_WORKERS: '2' } });
if (values.bench) configurations.push({ name: 'bench model, 2 Vosk workers', env: { STT_ENGINE: 'vosk', VOSK_MODEL_PATH: values.bench, MAX_WORKERS: '2' } });

let port = 18_600;
for (const { name, env } of configurations) {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) samples.push(await once_(env, port++));
  samples.sort((a, b) => a - b);
  const round = (ms: number): number => Math.round(ms);
  process.stdout.write(
    `${JSON.stringify({ configuration: name, runs, medianMs: round(samples[Math.floor(samples.length / 2)]!), minMs: round(samples[0]!), maxMs: round(samples.at(-1)!), node: process.version, cpu: cpus()[0]?.model, cores: cpus().length, date: new Date().toISOString() })}\n`,
  );
}
