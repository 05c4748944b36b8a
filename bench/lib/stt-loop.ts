// The ceiling every server figure is compared with: libvosk called in a tight loop on one thread of the
// bench process (no server, no threads, no sockets), fed the same audio in 100 ms chunks and reading
// the partial result after every chunk as the engine does.
import vosk from 'vosk-koffi';

export interface TightLoopResult {
  audioSeconds: number;
  cpuSeconds: number;
  wallSeconds: number;
  audioPerCpuSecond: number;
  /** Recognised texts, one per utterance. */
  texts: string[];
}

const BYTES_PER_SECOND = 32_000;

function cpuSecondsOfThisProcess(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/**
 * Decodes every utterance with a fresh recogniser, `chunkMs` at a time. The model load is outside the
 * measured time (a server loads it once at start-up too).
 */
export function runTightLoop(modelDir: string, utterances: readonly Buffer[], chunkMs = 100): TightLoopResult {
  const { libvosk } = vosk;
  libvosk.vosk_set_log_level(-1);
  const model: unknown = libvosk.vosk_model_new(modelDir);
  if (model === null || model === undefined) throw new Error(`libvosk could not load ${modelDir}`);
  const chunkBytes = (chunkMs * BYTES_PER_SECOND) / 1000;
  const texts: string[] = [];
  let audioBytes = 0;
  const cpu0 = cpuSecondsOfThisProcess();
  const wall0 = performance.now();
  for (const pcm of utterances) {
    const recognizer: unknown = libvosk.vosk_recognizer_new(model, 16_000);
    const parts: string[] = [];
    for (let offset = 0; offset < pcm.length; offset += chunkBytes) {
      const chunk = pcm.subarray(offset, offset + chunkBytes);
      // The same calls the engine's decoder makes per piece, JSON parsing included.
      if (libvosk.vosk_recognizer_accept_waveform(recognizer, chunk, chunk.length) === 1) {
        parts.push((JSON.parse(libvosk.vosk_recognizer_result(recognizer) as string) as { text?: string }).text ?? '');
      } else {
        JSON.parse(libvosk.vosk_recognizer_partial_result(recognizer) as string);
      }
    }
    parts.push((JSON.parse(libvosk.vosk_recognizer_final_result(recognizer) as string) as { text?: string }).text ?? '');
    libvosk.vosk_recognizer_free(recognizer);
    texts.push(parts.filter((part) => part !== '').join(' '));
    audioBytes += pcm.length;
  }
  const cpuSeconds = cpuSecondsOfThisProcess() - cpu0;
  const wallSeconds = (performance.now() - wall0) / 1000;
  libvosk.vosk_model_free(model);
  const audioSeconds = audioBytes / BYTES_PER_SECOND;
  return { audioSeconds, cpuSeconds, wallSeconds, audioPerCpuSecond: audioSeconds / cpuSeconds, texts };
}
