// The ceiling every server figure is compared with: libvosk called in a tight loop on one thread of the
// bench process (no server, no threads, no sockets), fed the same audio in 100 ms chunks and reading
// the partial result after every chunk as the engine does.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import vosk from 'vosk-koffi';
import { forkTsProcess } from './fork-process.js';
import type { LoopCommand, LoopMessage } from './stt-loop-process.js';

export interface TightLoopResult {
  audioSeconds: number;
  cpuSeconds: number;
  wallSeconds: number;
  audioPerCpuSecond: number;
  /** Recognised texts, one per utterance. */
  texts: string[];
}

const { libvosk } = vosk;
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
  const model = loadLoopModel(modelDir);
  try {
    return decodeInTightLoop(model, utterances, chunkMs);
  } finally {
    libvosk.vosk_model_free(model);
  }
}

/** A libvosk model for decodeInTightLoop (free it with libvosk.vosk_model_free). */
export function loadLoopModel(modelDir: string): unknown {
  libvosk.vosk_set_log_level(-1);
  const model: unknown = libvosk.vosk_model_new(modelDir);
  if (model === null || model === undefined) throw new Error(`libvosk could not load ${modelDir}`);
  return model;
}

export function decodeInTightLoop(model: unknown, utterances: readonly Buffer[], chunkMs = 100): TightLoopResult {
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
  const audioSeconds = audioBytes / BYTES_PER_SECOND;
  return { audioSeconds, cpuSeconds, wallSeconds, audioPerCpuSecond: audioSeconds / cpuSeconds, texts };
}

export interface ParallelLoopResult {
  threads: number;
  /** Sum over the loops of audio-s per wall-s: what the loops decoded together per second. */
  audioPerWallSecond: number;
}

/**
 * `threads` tight loops at once, each in its own child process (bench/lib/stt-loop-process.ts) on the same
 * audio: the nominal CPU limit assumes they scale by `threads`, and on a shared VM they may not.
 */
export async function runParallelTightLoops(modelDir: string, utterances: readonly Buffer[], threads: number, chunkMs = 100): Promise<ParallelLoopResult> {
  const file = fileURLToPath(new URL('./stt-loop-process.ts', import.meta.url));
  const children = Array.from({ length: threads }, () => forkTsProcess(file));
  try {
    const next = (child: ChildProcess, type: LoopMessage['type']): Promise<LoopMessage> =>
      new Promise((resolve, reject) => {
        const onMessage = (message: LoopMessage): void => {
          if (message.type === 'failed') reject(new Error(`tight loop process failed: ${message.message}`));
          else if (message.type === type) resolve(message);
          else return;
          child.off('message', onMessage);
        };
        child.on('message', onMessage);
        child.once('exit', (code) => reject(new Error(`tight loop process exited with ${code}`)));
      });
    const ready = children.map((child) => next(child, 'ready'));
    const audio = utterances.map((pcm) => pcm.toString('base64'));
    for (const child of children) child.send({ type: 'load', modelDir, utterances: audio, chunkMs } satisfies LoopCommand);
    await Promise.all(ready);
    const done = children.map((child) => next(child, 'done'));
    for (const child of children) child.send({ type: 'go' } satisfies LoopCommand);
    let audioPerWallSecond = 0;
    for (const message of await Promise.all(done)) {
      if (message.type === 'done') audioPerWallSecond += message.result.audioSeconds / message.result.wallSeconds;
    }
    return { threads, audioPerWallSecond };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill();
  }
}
