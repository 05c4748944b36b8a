// Issue 4 (d): resident memory (VmRSS) of the server process with 1 and 4 Vosk workers, idle after
// start-up and at its peak while decoding; the model must be counted once, not once per worker.
//
//   npx tsx bench/stt-memory.ts [--workers 1,4] [--layers N]
//
// The tone model (a few KB) runs the same servers as a baseline: what each worker costs whatever the
// model (its V8 isolate, its ring). The model's in-memory size is what loading it once adds to a fresh
// process. Decoding: 2 streams per worker, 10 s of speech each, as fast as the server allows.
import { parseArgs } from 'node:util';

import { prepareSttModel, type SttModel } from './lib/stt-model.js';
import { fixed, isoDate, printTable, progress } from './lib/stt-report.js';
import { measureServerRss, modelResidentBytes, type ServerRss } from './lib/stt-rss.js';
import { loadAverage1m } from './lib/stt-server.js';

const MIB = 2 ** 20;

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,4' },
    layers: { type: 'string' },
  },
});
const workerCounts = values.workers.split(',').map(Number);
const fewest = Math.min(...workerCounts);
const most = Math.max(...workerCounts);

interface ModelMemory {
  model: string;
  finalMdlBytes: number;
  modelResidentBytes: number;
  servers: ServerRss[];
}

async function measureModel(model: SttModel): Promise<ModelMemory> {
  const resident = modelResidentBytes(model.dir);
  const servers: ServerRss[] = [];
  for (const workers of workerCounts) {
    const rss = await measureServerRss(model, workers);
    progress(`${model.label}, MAX_WORKERS=${workers}: idle ${fixed(rss.idleBytes / MIB, 0)} MiB, decoding ${fixed(rss.decodingBytes / MIB, 0)} MiB`);
    servers.push(rss);
  }
  return { model: model.label, finalMdlBytes: model.finalMdlBytes, modelResidentBytes: resident, servers };
}

const loadAverageBefore = loadAverage1m();
const tone = await measureModel(await prepareSttModel({ kind: 'tone' }, progress));
const bench = await measureModel(await prepareSttModel({ kind: 'bench', ...(values.layers === undefined ? {} : { layers: Number(values.layers) }) }, progress));
const loadAverageAfter = loadAverage1m();

const rssOf = (memory: ModelMemory, workers: number, key: 'idleBytes' | 'decodingBytes'): number =>
  memory.servers.find((server) => server.workers === workers)![key];
const mib = (bytes: number): string => fixed(bytes / MIB, 0);
const growth = (memory: ModelMemory, key: 'idleBytes' | 'decodingBytes'): number => rssOf(memory, most, key) - rssOf(memory, fewest, key);
const extraWorkers = most - fewest;

process.stdout.write(`\nServer resident memory (VmRSS), ${isoDate()} UTC, load average ${loadAverageBefore} -> ${loadAverageAfter}\n\n`);
const rows: string[][] = [];
for (const memory of [bench, tone]) {
  for (const key of ['idleBytes', 'decodingBytes'] as const) {
    rows.push([
      `${memory.model}: ${key === 'idleBytes' ? 'idle after start' : 'peak while decoding'}`,
      ...workerCounts.map((workers) => mib(rssOf(memory, workers, key))),
      mib(growth(memory, key)),
    ]);
  }
}
printTable(['MiB', ...workerCounts.map((workers) => `MAX_WORKERS=${workers}`), `growth ${fewest} -> ${most}`], rows);
process.stdout.write('\n');
const modelExplainedIdle = growth(bench, 'idleBytes') - growth(tone, 'idleBytes');
const modelExplainedDecoding = growth(bench, 'decodingBytes') - growth(tone, 'decodingBytes');
printTable(
  ['bench model counted once?', 'MiB'],
  [
    ['final.mdl on disk (text)', mib(bench.finalMdlBytes)],
    ['model in memory (one load)', mib(bench.modelResidentBytes)],
    [`${extraWorkers}x the model (one copy per extra worker)`, mib(extraWorkers * bench.modelResidentBytes)],
    [`growth ${fewest} -> ${most} workers, bench model: idle / decoding`, `${mib(growth(bench, 'idleBytes'))} / ${mib(growth(bench, 'decodingBytes'))}`],
    [`growth ${fewest} -> ${most} workers, tone model (per-worker baseline): idle / decoding`, `${mib(growth(tone, 'idleBytes'))} / ${mib(growth(tone, 'decodingBytes'))}`],
    ['growth the model explains (bench - baseline): idle / decoding', `${mib(modelExplainedIdle)} / ${mib(modelExplainedDecoding)}`],
  ],
);
process.stdout.write(
  `${JSON.stringify({ bench: 'stt-memory', date: new Date().toISOString(), loadAverageBefore, loadAverageAfter, models: [bench, tone], modelExplainedIdleBytes: modelExplainedIdle, modelExplainedDecodingBytes: modelExplainedDecoding })}\n`,
);
