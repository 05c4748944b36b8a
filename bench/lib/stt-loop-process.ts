// A child process of the bench that runs libvosk's tight loop (stt-loop.ts), so that several run at once:
// what the machine's cores give libvosk threads in parallel right now, beside what one thread gives.
// Protocol over the IPC channel: 'load' -> model loaded -> 'ready' -> 'go' -> 'done' (the loop's figures).
import { decodeInTightLoop, loadLoopModel, type TightLoopResult } from './stt-loop.js';

export type LoopCommand = { type: 'load'; modelDir: string; utterances: string[]; chunkMs: number } | { type: 'go' };
export type LoopMessage = { type: 'ready' } | { type: 'done'; result: Omit<TightLoopResult, 'texts'> } | { type: 'failed'; message: string };

function send(message: LoopMessage): void {
  process.send?.(message);
}

process.on('message', (command: LoopCommand) => {
  if (command.type !== 'load') return;
  const utterances = command.utterances.map((base64) => Buffer.from(base64, 'base64'));
  // Loaded before 'ready', so that every loop starts decoding at 'go', together.
  const model = loadLoopModel(command.modelDir);
  process.once('message', (next: LoopCommand) => {
    if (next.type !== 'go') return;
    try {
      const { texts: _texts, ...result } = decodeInTightLoop(model, utterances, command.chunkMs);
      send({ type: 'done', result });
    } catch (err) {
      send({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
    }
    process.disconnect();
  });
  send({ type: 'ready' });
});
