// Piscina handler for Vosk decoding. Each worker thread serves exactly one slot of the pool: the sticky
// balancer in src/stt/vosk/pool.ts sends it only that slot's tasks, so every recogniser it creates is used
// by this thread alone (libvosk recognisers are single-threaded; the model is shared read-only).
import { threadId, workerData } from 'node:worker_threads';
import { BatchDecoder } from '../src/stt/vosk/decoder.js';
import { assertNever, type DecodeResult, type DecodeTask, type VoskWorkerData, type WorkerResult, type WorkerTask } from './messages.js';

const data = workerData as VoskWorkerData;
let decoder: BatchDecoder | null = null;
let boundSlot = -1;

function decode(task: DecodeTask): DecodeResult {
  if (decoder === null) {
    // The first task names this thread's slot; its ring is already in workerData.
    const ring = data.rings[task.slot];
    if (ring === undefined) throw new RangeError(`no ring for slot ${task.slot}`);
    boundSlot = task.slot;
    decoder = new BatchDecoder({
      modelAddress: data.modelAddress,
      ring,
      streams: data.streamsPerSlot,
      partialIntervalMs: data.partialIntervalMs,
      threadId,
    });
  } else if (task.slot !== boundSlot) {
    // The balancer never does this; if it did, recognisers would be shared across threads.
    throw new Error(`worker bound to slot ${boundSlot} got a task for slot ${task.slot}`);
  }
  return decoder.decode(task);
}

function stop(): never {
  decoder?.close();
  // In a worker thread this ends the thread only; Piscina sees it exit and starts a replacement.
  process.exit(0);
}

export default function handleTask(task: WorkerTask): WorkerResult {
  switch (task.type) {
    case 'decode':
      return decode(task);
    case 'stop':
      return stop();
    default:
      return assertNever(task);
  }
}
