import t from 'tap';
import { LoadMeter } from '../../src/stt/vosk/load-meter.js';

const BYTES_PER_MS = 32;

t.test('a worker that was saturated and went quiet reads as idle again', async (t) => {
  const start = 0;
  const meter = new LoadMeter({ windowMs: 1000, bytesPerMs: BYTES_PER_MS }, start);
  // Two windows of full load.
  meter.record(1000, 1000, 1000 * BYTES_PER_MS, start + 1000);
  meter.record(1000, 1000, 1000 * BYTES_PER_MS, start + 2000);
  t.ok(meter.utilisationAt(start + 2000) > 0.7, 'saturated');
  // No batch finishes any more: the open window's idle time brings it down when read.
  t.ok(meter.utilisationAt(start + 12_000) < 0.5, 'quiet afterwards');
});

t.test('a seeded cost is used until measured, and comes back after a reset', async (t) => {
  const meter = new LoadMeter({ windowMs: 1000, bytesPerMs: BYTES_PER_MS }, 0);
  meter.seedCost(0.05);
  t.equal(meter.costPerAudioSecond, 0.05);
  meter.record(20, 20, 1000 * BYTES_PER_MS, 500);
  t.equal(meter.costPerAudioSecond, 0.05, 'a second of audio in half a second of wall time is not a sample yet');
  meter.record(20, 20, 1000 * BYTES_PER_MS, 1000);
  t.ok(Math.abs(meter.costPerAudioSecond - 0.02) < 1e-9, 'the measured cost replaces the seed');
  meter.reset(1000);
  t.equal(meter.costPerAudioSecond, 0.05);
});

t.test('time spent outside steady audio counts as load, not as cost per audio second', async (t) => {
  const meter = new LoadMeter({ windowMs: 1000, bytesPerMs: BYTES_PER_MS }, 0);
  // One second: 500 ms decoding 10 s of steady audio plus 300 ms of final texts and new recognisers.
  meter.record(800, 500, 10_000 * BYTES_PER_MS, 1000);
  t.ok(Math.abs(meter.costPerAudioSecond - 0.05) < 1e-9, `cost 0.05 (${meter.costPerAudioSecond})`);
  t.ok(Math.abs(meter.utilisation - 0.4) < 1e-9, `utilisation counts all 800 ms (smoothed: ${meter.utilisation})`);
});
