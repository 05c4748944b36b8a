// Helpers for the Vosk engine tests: a real tone model on disk, tone audio, and streams that record what
// the engine reports. libvosk runs for real; nothing here mocks our code.
import { pino } from 'pino';
import type { Test } from 'tap';
import type { VoxgateError } from '../../src/errors.js';
import { VoskEngine, type VoskEngineOptions } from '../../src/stt/vosk/engine.js';
import type { VoskStream } from '../../src/stt/vosk/stream.js';
import { synthesizeToneAudio, type ToneAudioOptions } from '../../src/vosk-model/tone-audio.js';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';

export const silentLogger = pino({ level: 'silent' });

/** Writes the default tone model (alpha..echo) into a fresh test directory. */
export async function toneModel(t: Test): Promise<string> {
  const dir = t.testdir();
  await writeToneModel(dir);
  return dir;
}

export async function startEngine(t: Test, options: Partial<VoskEngineOptions> & { modelPath: string }): Promise<VoskEngine> {
  const engine = await VoskEngine.create({ sampleRate: 16000, workers: 2, logger: silentLogger, ...options });
  t.teardown(() => engine.destroy());
  await allWorkersReady(engine);
  return engine;
}

/** Resolves when every slot has a thread (workers start asynchronously). */
export function allWorkersReady(engine: VoskEngine): Promise<void> {
  const isReady = (): boolean => engine.snapshot().slots.every((slot) => slot.threadId !== null);
  if (isReady()) return Promise.resolve();
  return new Promise((resolve) => {
    const onReady = (): void => {
      if (!isReady()) return;
      engine.off('workerReady', onReady);
      resolve();
    };
    engine.on('workerReady', onReady);
  });
}

export function tones(words: readonly string[], options: ToneAudioOptions = {}): Buffer {
  return synthesizeToneAudio(words, options);
}

export interface RecordedStream {
  stream: VoskStream;
  partials: string[];
  segments: string[];
  errors: VoxgateError[];
  /** Resolves with the first error the stream reports. */
  failed: Promise<VoxgateError>;
  /** Resolves with the first segment the stream reports. */
  firstSegment: Promise<string>;
}

export function openRecorded(engine: VoskEngine, streamId: string): RecordedStream {
  const partials: string[] = [];
  const segments: string[] = [];
  const errors: VoxgateError[] = [];
  let onFailed: (err: VoxgateError) => void = () => {};
  const failed = new Promise<VoxgateError>((resolve) => {
    onFailed = resolve;
  });
  let onFirstSegment: (text: string) => void = () => {};
  const firstSegment = new Promise<string>((resolve) => {
    onFirstSegment = resolve;
  });
  const stream = engine.openStream({
    streamId,
    onPartial: (text) => partials.push(text),
    onSegment: (text) => {
      segments.push(text);
      onFirstSegment(text);
    },
    onError: (err) => {
      errors.push(err);
      onFailed(err);
    },
  }) as VoskStream;
  return { stream, partials, segments, errors, failed, firstSegment };
}

/**
 * Writes `pcm` in `chunkBytes` writes, yielding to the event loop after each one, and waiting for buffer
 * room when the recogniser is behind (the test feeds much faster than real time). Each write gets a
 * fresh buffer that is overwritten right after, as uWS does with its message buffer.
 */
export async function feed(stream: VoskStream, pcm: Uint8Array, chunkBytes: number): Promise<void> {
  const scratch = new Uint8Array(chunkBytes);
  for (let offset = 0; offset < pcm.byteLength; offset += chunkBytes) {
    const length = Math.min(chunkBytes, pcm.byteLength - offset);
    await stream.whenWritable(length);
    scratch.set(pcm.subarray(offset, offset + length));
    stream.write(scratch.subarray(0, length));
    scratch.fill(0x55); // the caller reuses its buffer: the engine must have copied already
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** The whole transcript a stream produced: segments, then the final text. */
export function transcript(recorded: RecordedStream, finalText: string): string {
  return [...recorded.segments, finalText].filter((text) => text !== '').join(' ');
}

/**
 * Keeps the process alive while a test waits for a worker to start: Piscina unrefs starting threads, so
 * with nothing else pending (a server would be listening) the test process would simply exit.
 */
export function holdEventLoop(t: Test): void {
  const handle = setInterval(() => {}, 60_000);
  t.teardown(() => clearInterval(handle));
}
