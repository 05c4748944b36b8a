// Measures what one second of audio costs this model to decode, once, on the main thread before the
// workers start: admission needs a cost before the workers have measured one, or a fresh server's first
// burst of recordings is admitted blind (admission.ts starts its latency limit at the capacity this
// cost gives).
//
// One recogniser alone measures far too little for tiny models: what a loaded worker pays per audio
// second is mostly per-piece plumbing (reading the ring, the native call, the partial result's JSON,
// events) and cache misses across hundreds of recognisers (tone model: 0.0008 s per audio-s alone,
// about 0.003 in a worker with 250 streams). So the calibration runs the workers' own decoder
// (decoder.ts, BatchDecoder) on many recognisers at once, in batches of pieces the way worker-slot.ts
// cuts them, and counts only their steady audio (past the decoder's warm-up), as the workers do.
// Measured (tone model, 2-core VM): one recogniser 0.0008, 32 recognisers over 6 s 0.0017 (idle machine)
// to 0.0033 (busy) s per audio-s, against ~0.0036 learned by a loaded worker (wall time).
import { BatchOp, OP_WIDTH } from '../../../workers/messages.js';
import { mulberry32 } from '../../vosk-model/tone-audio.js';
import { AudioRing } from './audio-ring.js';
import { BatchDecoder } from './decoder.js';
import vosk from 'vosk-koffi';

const { libvosk } = vosk;

export interface CalibrationOptions {
  modelAddress: bigint;
  /** The engine's default stream rate (Hz) and the factor the decoder raises it by (1 at or above the model's). */
  sampleRate: number;
  upsampleFactor: number;
  /** As the engine's: how often the decoder reads partial texts (ms of audio). */
  partialIntervalMs: number;
  /** Recognisers decoding side by side; default: as many as about 0.6 CPU-s allows, at most 32. */
  recognisers?: number;
}

const PIECE_MS = 200;
/**
 * Audio per recogniser: the decoder's two seconds of warm-up, then four steady seconds that are measured.
 * A recogniser's cost grows as its utterance does (tone model, 64 recognisers: 0.0011 s per audio-s over
 * seconds 2-3, 0.0026 over seconds 2-7), so a short calibration would be as dishonest as a single one.
 */
const SECONDS_PER_RECOGNISER = 6;
/** At most this many recognisers, and about this much CPU time for the whole calibration. */
const MAX_RECOGNISERS = 32;
const BUDGET_SECONDS = 0.6;
// Low-level noise keeps the decoder searching the way speech does; digital silence would be cheaper.
const NOISE_LSB = 300;

/**
 * Decode seconds per audio second of a default-rate stream (steady), on a core of its own; 0 if no
 * recogniser could be made. seedCost() turns it into what a worker pays at capacity.
 */
export function measureDecodeCost(options: CalibrationOptions): number {
  const single = singleRecogniserCost(options);
  if (single <= 0) return 0;
  // As many recognisers as the budget allows: a big model's cost is its own (one is enough), a tiny
  // model's is the plumbing and the cache, which many recognisers show.
  const recognisers = options.recognisers ?? Math.max(1, Math.min(MAX_RECOGNISERS, Math.floor(BUDGET_SECONDS / (single * SECONDS_PER_RECOGNISER))));
  const bytesPerSecond = options.sampleRate * 2;
  const pieceBytes = 2 * Math.round((PIECE_MS * bytesPerSecond) / 2000);
  const noise = noisePcm(SECONDS_PER_RECOGNISER * bytesPerSecond);
  const ring = new AudioRing({ streams: recognisers, regionBytes: pieceBytes });
  const decoder = new BatchDecoder({
    modelAddress: options.modelAddress,
    ring: ring.buffer,
    streams: recognisers,
    threadId: 0,
    partialIntervalMs: options.partialIntervalMs,
  });
  let steadyMs = 0;
  let steadyBytes = 0;
  let finalMs = 0;
  let finalBytes = 0;
  try {
    const ops = new Int32Array(OP_WIDTH * recognisers);
    for (let h = 0; h < recognisers; h++) ops.set([BatchOp.open, h, options.sampleRate, options.upsampleFactor], h * OP_WIDTH);
    decoder.decode({ type: 'decode', slot: 0, seq: 0, ops });
    for (let offset = 0, seq = 1; offset + pieceBytes <= noise.length; offset += pieceBytes, seq++) {
      // One batch per round: one piece of every recogniser, as a worker gets them.
      for (let h = 0; h < recognisers; h++) {
        ring.write(h, noise.subarray(offset, offset + pieceBytes));
        const length = ring.takePiece(h, pieceBytes);
        ops.set([BatchOp.audio, h, ring.pieceOffset, length], h * OP_WIDTH);
      }
      const result = decoder.decode({ type: 'decode', slot: 0, seq, ops });
      steadyMs += result.steadyBusyMs;
      steadyBytes += result.steadyAudioBytes;
      for (let h = 0; h < recognisers; h++) ring.release(h, ops[h * OP_WIDTH + 3]!);
    }
    // The final texts too: the workers' measured cost spreads them over their recordings' audio.
    for (let h = 0; h < recognisers; h++) ops.set([BatchOp.finish, h, 0, 0], h * OP_WIDTH);
    const finished = decoder.decode({ type: 'decode', slot: 0, seq: -1, ops });
    finalMs = finished.finalBusyMs;
    finalBytes = finished.finalAudioBytes;
  } finally {
    decoder.close();
  }
  // steadyAudioBytes counts what libvosk decoded, after upsampling.
  const steadySeconds = steadyBytes / (bytesPerSecond * options.upsampleFactor);
  const finalSeconds = finalBytes / (bytesPerSecond * options.upsampleFactor);
  const cost = steadySeconds > 0 ? steadyMs / 1000 / steadySeconds + (finalSeconds > 0 ? finalMs / 1000 / finalSeconds : 0) : single;
  return Math.max(cost, single);
}

/** CPU seconds per audio second of one recogniser alone (1 s of noise, 100 ms chunks): sizes the real calibration. */
function singleRecogniserCost(options: CalibrationOptions): number {
  const rate = options.sampleRate * options.upsampleFactor;
  const pcm = noisePcm(rate * 2);
  const recognizer: unknown = libvosk.vosk_recognizer_new(options.modelAddress, rate);
  if (recognizer === null || recognizer === undefined) return 0;
  const chunkBytes = Math.round(rate / 10) * 2;
  try {
    const before = process.cpuUsage();
    for (let offset = 0; offset < pcm.length; offset += chunkBytes) {
      const chunk = pcm.subarray(offset, offset + chunkBytes);
      libvosk.vosk_recognizer_accept_waveform(recognizer, chunk, chunk.length);
    }
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1e6;
  } finally {
    libvosk.vosk_recognizer_free(recognizer);
  }
}

function noisePcm(bytes: number): Buffer {
  const pcm = Buffer.alloc(bytes);
  const random = mulberry32(1);
  for (let i = 0; i + 1 < bytes; i += 2) pcm.writeInt16LE(Math.round((random() - 0.5) * 2 * NOISE_LSB), i);
  return pcm;
}

/**
 * The cost a worker pays per audio second at capacity, from the calibrated one: workers measure wall
 * time, and at capacity every thread of the process is runnable (the main thread too: audio in, events
 * out), so a worker gets about cores / (workers + 1) of a core, at most a whole one. Tone model, 2
 * workers on 2 cores: 0.0024-0.0030 calibrated, x 1.5 = 0.0036-0.0045, against ~0.0036 learned at
 * capacity. Only the seed: the workers' own measurements replace it.
 */
export function seedCost(calibrated: number, workers: number, cores: number): number {
  const share = Math.min(1, cores / (workers + 1));
  return calibrated / share;
}
