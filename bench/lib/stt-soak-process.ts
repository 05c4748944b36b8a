// A child process of bench/stt-admission.ts playing a share of the soak's speakers: each keeps its
// connection and, until the deadline, records an utterance in real time, pauses, records the next; a
// refused recording (STT_SERVICE_BUSY) is retried after a pause. So streams arrive and leave all the
// time, as on a server with many app users. Results go to the parent as they come (batched per second),
// stamped with the wall clock (Date.now(): one machine, one clock for every process).
// Protocol over IPC: 'start' (setup) -> connect -> 'ready' -> 'go' -> 'results'... -> 'done'.
import { SttBenchClient, type RecordingResult } from './stt-client.js';
import { synthesizeToneAudio } from '../../src/vosk-model/tone-audio.js';
import { TONE_LEAD_MS } from './stt-model.js';
import { mulberry32 } from '../../src/vosk-model/tone-audio.js';

export interface SoakSetup {
  url: string;
  frequenciesHz: Array<[string, number]>;
  /** Utterances to choose from (words each). */
  utterances: string[][];
  speakers: number;
  /** Seed of this process's random choices. */
  seed: number;
  chunkMs: number;
  /** Pause after a recording (ms, uniform between the two). */
  pauseMs: [number, number];
  /** Pause after a refusal before trying again (ms, uniform). */
  retryMs: [number, number];
  /** Wall-clock time (Date.now()) after which no new recording starts. */
  untilEpochMs: number;
}

export interface SoakRecord {
  /** Date.now() when the recording ended (message_recorded, the refusal, or the failure). */
  atEpochMs: number;
  outcome: RecordingResult['outcome'];
  latencyMs: number | null;
  errorDetails: string | null;
}

export type SoakMessage = { type: 'ready' } | { type: 'results'; records: SoakRecord[] } | { type: 'done' } | { type: 'failed'; message: string };
export type SoakCommand = { type: 'start'; setup: SoakSetup } | { type: 'go' };

function send(message: SoakMessage): void {
  process.send?.(message);
}

function nextCommand(type: SoakCommand['type']): Promise<SoakCommand> {
  return new Promise((resolve) => {
    const onMessage = (command: SoakCommand): void => {
      if (command.type !== type) return;
      process.off('message', onMessage);
      resolve(command);
    };
    process.on('message', onMessage);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  if (process.send === undefined) throw new Error('stt-soak-process must run as a child process with IPC');
  const start = nextCommand('start');
  const go = nextCommand('go');
  const command = await start;
  if (command.type !== 'start') return;
  const setup = command.setup;
  const frequenciesHz = new Map(setup.frequenciesHz);
  const utterances = setup.utterances.map((words) => ({ pcm: synthesizeToneAudio(words, { frequenciesHz, leadMs: TONE_LEAD_MS }), text: words.join(' ') }));
  const random = mulberry32(setup.seed);
  const between = ([low, high]: [number, number]): number => low + random() * (high - low);
  const clients: SttBenchClient[] = [];
  for (let i = 0; i < setup.speakers; i += 16) {
    const group = await Promise.all(
      Array.from({ length: Math.min(16, setup.speakers - i) }, async () => {
        const client = await SttBenchClient.connect(setup.url);
        await client.startConversation();
        return client;
      }),
    );
    clients.push(...group);
  }
  send({ type: 'ready' });
  await go;
  let pending: SoakRecord[] = [];
  const flushTimer = setInterval(() => {
    if (pending.length === 0) return;
    send({ type: 'results', records: pending });
    pending = [];
  }, 1000);
  await Promise.all(
    clients.map(async (client, index) => {
      // Spread the first arrivals over the first pause.
      await sleep(between(setup.pauseMs) * random() + index);
      while (Date.now() < setup.untilEpochMs) {
        const utterance = utterances[Math.floor(random() * utterances.length)]!;
        const result = await client.record({ pcm: utterance.pcm, expectedText: utterance.text, chunkMs: setup.chunkMs, pacing: { kind: 'realtime' } });
        pending.push({ atEpochMs: Date.now(), outcome: result.outcome, latencyMs: result.latencyMs, errorDetails: result.outcome === 'busy' ? (result.errorDetails ?? null) : null });
        await sleep(between(result.outcome === 'busy' ? setup.retryMs : setup.pauseMs));
      }
    }),
  );
  clearInterval(flushTimer);
  if (pending.length > 0) send({ type: 'results', records: pending });
  for (const client of clients) client.close();
  send({ type: 'done' });
  process.disconnect();
}

main().catch((err: unknown) => {
  send({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.disconnect();
});
