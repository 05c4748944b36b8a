// Issue 13: what reading partial texts costs per stream, through the workers' own decoder.
//
//   npx tsx bench/stt-partials.ts [--models tone,bench] [--streams 64] [--seconds 8] [--rounds 3]
//
// One thread of this process runs BatchDecoder (src/stt/vosk/decoder.ts) over `--streams` recognisers
// fed tone speech in 200 ms pieces, batch by batch as a worker gets them, once reading partial texts as
// the decoder paces them (what a stream costs when a connection asked for transcript_partial) and once
// with BatchOp.partials off (nobody listens: the app's default). Rounds alternate, so load on the machine
// hits both alike. Figure: audio-s decoded per CPU-s; the ratio off / on is the per-stream saving.
import { parseArgs } from 'node:util';
import { BatchOp, OP_WIDTH } from '../workers/messages.js';
import { AudioRing } from '../src/stt/vosk/audio-ring.js';
import { BatchDecoder } from '../src/stt/vosk/decoder.js';
import { SharedVoskModel, setVoskLogLevel } from '../src/stt/vosk/model.js';
import { prepareSttModel, toneUtterance, type SttModel } from './lib/stt-model.js';
import { fixed, isoDate, printTable, progress } from './lib/stt-report.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'tone,bench' },
    streams: { type: 'string' },
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
  },
});
const PIECE_BYTES = 6400;
const rounds = Number(values.rounds);

function audioPerCpuSecond(model: SttModel, modelAddress: bigint, streams: number, readPartials: boolean): number {
  const utterances = Array.from({ length: streams }, (_, i) => toneUtterance(model, Number(values.seconds), i).pcm);
  const ring = new AudioRing({ streams, regionBytes: PIECE_BYTES });
  const decoder = new BatchDecoder({ modelAddress, ring: ring.buffer, streams, threadId: 0, partialIntervalMs: 200 });
  const ops = new Int32Array(OP_WIDTH * streams * 2);
  let count = 0;
  for (let h = 0; h < streams; h++) {
    ops.set([BatchOp.open, h, 16000, 1], count);
    count += OP_WIDTH;
    if (!readPartials) {
      ops.set([BatchOp.partials, h, 0, 0], count);
      count += OP_WIDTH;
    }
  }
  decoder.decode({ type: 'decode', slot: 0, seq: 0, ops: ops.slice(0, count) });
  const length = Math.min(...utterances.map((pcm) => pcm.length));
  const audioOps = new Int32Array(OP_WIDTH * streams);
  const before = process.cpuUsage();
  let audioBytes = 0;
  for (let offset = 0, seq = 1; offset + PIECE_BYTES <= length; offset += PIECE_BYTES, seq++) {
    for (let h = 0; h < streams; h++) {
      ring.write(h, utterances[h]!.subarray(offset, offset + PIECE_BYTES));
      audioOps.set([BatchOp.audio, h, ring.pieceOffset, ring.takePiece(h, PIECE_BYTES)], h * OP_WIDTH);
    }
    decoder.decode({ type: 'decode', slot: 0, seq, ops: audioOps });
    for (let h = 0; h < streams; h++) ring.release(h, PIECE_BYTES);
    audioBytes += PIECE_BYTES * streams;
  }
  const used = process.cpuUsage(before);
  decoder.close();
  return audioBytes / 32_000 / ((used.user + used.system) / 1e6);
}

setVoskLogLevel(-1);
const rows: string[][] = [];
const results: Array<Record<string, unknown>> = [];
for (const kind of values.models.split(',')) {
  if (kind !== 'tone' && kind !== 'bench') throw new Error(`--models: unknown model ${kind}`);
  const model = await prepareSttModel({ kind }, progress);
  const streams = values.streams === undefined ? (kind === 'tone' ? 128 : 4) : Number(values.streams);
  const shared = SharedVoskModel.acquire(model.dir);
  const on: number[] = [];
  const off: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      on.push(audioPerCpuSecond(model, shared.address, streams, true));
      off.push(audioPerCpuSecond(model, shared.address, streams, false));
      progress(`${model.label}, ${streams} recognisers, round ${round + 1}: partials read ${fixed(on.at(-1), 1)}, not read ${fixed(off.at(-1), 1)} audio-s per CPU-s`);
    }
  } finally {
    shared.release();
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  rows.push([model.label, String(streams), fixed(median(on), 1), fixed(median(off), 1), fixed(median(off) / median(on), 2)]);
  results.push({ model: model.label, streams, partialsRead: on, partialsNotRead: off });
}
process.stdout.write(`\nPartial texts read or not (${isoDate()} UTC, BatchDecoder on one thread, 200 ms pieces, medians of ${rounds} alternating rounds)\n\n`);
printTable(['model', 'recognisers', 'partials read: audio-s per CPU-s', 'not read', 'ratio'], rows);
process.stdout.write(`${JSON.stringify({ bench: 'stt-partials', date: new Date().toISOString(), results })}\n`);
