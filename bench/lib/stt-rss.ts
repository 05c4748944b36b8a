// Resident memory of the speech server: idle after start-up and at its peak while decoding, and the
// in-memory size of a model (what loading it once adds to a process), so that "the model is counted
// once" can be checked: N workers must not cost N model loads.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { TSX_IMPORT } from './fork-process.js';
import { SttBenchClient } from './stt-client.js';
import { toneUtterance, type SttModel } from './stt-model.js';
import { startSttServer } from './stt-server.js';

export interface ServerRss {
  workers: number;
  /** VmRSS once /readyz answered (every worker has started and decoded its warm-up batch). */
  idleBytes: number;
  /** Highest VmRSS sampled (every 50 ms) while `streams` clients decoded. */
  decodingBytes: number;
  streams: number;
}

/**
 * Starts the server on `model` with `workers`, reads VmRSS when idle, then while `streams` clients
 * (at least one per worker) each record `seconds` of speech as fast as the server allows.
 */
export async function measureServerRss(model: SttModel, workers: number, options: { streams?: number; seconds?: number } = {}): Promise<ServerRss> {
  const streams = options.streams ?? Math.max(2, 2 * workers);
  const server = await startSttServer({ modelDir: model.dir, workers });
  try {
    const idleBytes = server.rssBytes();
    const clients = await Promise.all(
      Array.from({ length: streams }, async () => {
        const client = await SttBenchClient.connect(server.url);
        await client.startConversation();
        return client;
      }),
    );
    let decodingBytes = idleBytes;
    const sampler = setInterval(() => {
      decodingBytes = Math.max(decodingBytes, server.rssBytes());
    }, 50);
    try {
      const results = await Promise.all(
        clients.map((client, index) => {
          const utterance = toneUtterance(model, options.seconds ?? 10, index);
          return client.record({ pcm: utterance.pcm, expectedText: utterance.text, chunkMs: 100, pacing: { kind: 'ahead', aheadMs: 3000 }, timeoutMs: 60_000 });
        }),
      );
      const wrong = results.filter((result) => result.outcome !== 'ok');
      if (wrong.length > 0) throw new Error(`${wrong.length} of ${streams} recordings failed: ${JSON.stringify(wrong[0])}`);
    } finally {
      clearInterval(sampler);
      decodingBytes = Math.max(decodingBytes, server.rssBytes());
      for (const client of clients) client.close();
    }
    return { workers, idleBytes, decodingBytes, streams };
  } finally {
    await server.stop();
  }
}

const MODEL_LOAD_PROBE = fileURLToPath(new URL('./stt-model-load-probe.ts', import.meta.url));

/**
 * What loading `modelDir` once adds to the resident memory of a fresh process (a child process, so
 * nothing else this process allocated blurs it): the model's in-memory size.
 */
export function modelResidentBytes(modelDir: string): number {
  const probe = spawnSync(process.execPath, ['--import', TSX_IMPORT, MODEL_LOAD_PROBE, modelDir], { encoding: 'utf8', timeout: 120_000 });
  if (probe.status !== 0) throw new Error(`model load probe failed (${probe.status}): ${probe.stderr}`);
  return Number(JSON.parse(probe.stdout.trim().split('\n').at(-1) ?? '{}').modelResidentBytes);
}
