// Measures what one second of audio costs this model to decode, once, on the main thread before the
// workers start: admission control needs a cost before the first streams have been measured, or a burst
// of new recordings on a fresh server is admitted blind.
import vosk from 'vosk-koffi';
import { mulberry32 } from '../../vosk-model/tone-audio.js';

const { libvosk } = vosk;

const CALIBRATION_SECONDS = 2;
const CHUNK_MS = 100;
// Low-level noise keeps the decoder searching the way speech does; digital silence would be cheaper.
const NOISE_LSB = 300;
// The workers measure wall time on a shared core, which a fresh recogniser alone on an idle core does
// not see (bench model: 0.047 CPU-s per audio-s here against 0.045-0.05 measured in the workers at
// capacity, 0.058 with the margin), so the estimate is scaled up: admission should err on the side of
// latency until the workers have measured.
const CALIBRATION_MARGIN = 1.25;

/** Decode CPU seconds per audio second for this model (a fresh recogniser, 2 s of noise, no final text, with a margin). */
export function measureDecodeCost(modelAddress: bigint, sampleRate: number): number {
  const samples = Math.round(CALIBRATION_SECONDS * sampleRate);
  const pcm = Buffer.alloc(samples * 2);
  const random = mulberry32(1);
  for (let i = 0; i < samples; i++) pcm.writeInt16LE(Math.round((random() - 0.5) * 2 * NOISE_LSB), i * 2);
  const recognizer: unknown = libvosk.vosk_recognizer_new(modelAddress, sampleRate);
  if (recognizer === null || recognizer === undefined) return 0;
  const chunkBytes = Math.round((sampleRate * CHUNK_MS) / 1000) * 2;
  // Audio only: the final text costs per recording, not per second of audio, and the workers' measured
  // cost leaves it out too (load-meter.ts); with the bench model it added an eighth.
  let used: NodeJS.CpuUsage;
  try {
    const before = process.cpuUsage();
    for (let offset = 0; offset < pcm.length; offset += chunkBytes) {
      const chunk = pcm.subarray(offset, offset + chunkBytes);
      libvosk.vosk_recognizer_accept_waveform(recognizer, chunk, chunk.length);
      libvosk.vosk_recognizer_partial_result(recognizer);
    }
    used = process.cpuUsage(before);
  } finally {
    libvosk.vosk_recognizer_free(recognizer);
  }
  return ((used.user + used.system) / 1e6 / CALIBRATION_SECONDS) * CALIBRATION_MARGIN;
}
