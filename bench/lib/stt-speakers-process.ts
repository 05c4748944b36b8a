// A child process of the bench that plays a share of the real-time speakers, so that hundreds of
// clients do not crowd one event loop (which would add its own delay to every latency measured).
// Protocol over the IPC channel: 'start' (the speakers) -> connect every speaker -> 'ready' -> 'go' ->
// 'done' (results). A process rather than a worker thread: tsx cannot load a .ts worker main module.

import { SttBenchClient, type RecordingResult } from './stt-client.js';
import { synthesizeToneAudio } from '../../src/vosk-model/tone-audio.js';
import { TONE_LEAD_MS } from './stt-model.js';

export interface SpeakersSetup {
  url: string;
  frequenciesHz: Array<[string, number]>;
  /** Per speaker: the words it says and when it starts after 'go' (ms). */
  speakers: Array<{ words: string[]; startDelayMs: number }>;
  chunkMs: number;
}

export type SpeakersMessage =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'done'; results: RecordingResult[] };

export type SpeakersCommand = { type: 'start'; setup: SpeakersSetup } | { type: 'go' };

function send(message: SpeakersMessage): void {
  process.send?.(message);
}

function nextCommand(type: SpeakersCommand['type']): Promise<SpeakersCommand> {
  return new Promise((resolve) => {
    const onMessage = (command: SpeakersCommand): void => {
      if (command.type !== type) return;
      process.off('message', onMessage);
      resolve(command);
    };
    process.on('message', onMessage);
  });
}

async function main(): Promise<void> {
  if (process.send === undefined) throw new Error('stt-speakers-process must run as a child process with IPC');
  const start = nextCommand('start');
  const go = nextCommand('go');
  const command = await start;
  if (command.type !== 'start') return;
  const data = command.setup;
  const frequenciesHz = new Map(data.frequenciesHz);
  const speakers = data.speakers.map((speaker) => ({
    ...speaker,
    pcm: synthesizeToneAudio(speaker.words, { frequenciesHz, leadMs: TONE_LEAD_MS }),
    text: speaker.words.join(' '),
  }));
  const clients: SttBenchClient[] = [];
  // Connect in small groups: hundreds of simultaneous handshakes only measure the accept queue.
  for (let i = 0; i < speakers.length; i += 16) {
    const group = await Promise.all(
      speakers.slice(i, i + 16).map(async () => {
        const client = await SttBenchClient.connect(data.url);
        await client.startConversation();
        return client;
      }),
    );
    clients.push(...group);
  }
  send({ type: 'ready' });
  await go;
  const results = await Promise.all(
    speakers.map(async (speaker, index) => {
      await new Promise((resolve) => setTimeout(resolve, speaker.startDelayMs));
      return clients[index]!.record({ pcm: speaker.pcm, expectedText: speaker.text, chunkMs: data.chunkMs, pacing: { kind: 'realtime' } });
    }),
  );
  for (const client of clients) client.close();
  send({ type: 'done', results });
  process.disconnect();
}

main().catch((err: unknown) => {
  send({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.disconnect();
});
