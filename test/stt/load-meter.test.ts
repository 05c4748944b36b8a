import t from 'tap';
import { LoadMeter } from '../../src/stt/vosk/load-meter.js';

const BYTES_PER_MS = 32;

t.test('a worker that was saturated and went quiet reads as idle again', async (t) => {
  const start = 0;
  const meter = new LoadMeter({ windowMs: 1000, bytesPerMs: BYTES_PER_MS }, start);
  // Two windows of full load.
  meter.record(1000, 1000 * BYTES_PER_MS, start + 1000);
  meter.record(1000, 1000 * BYTES_PER_MS, start + 2000);
  t.ok(meter.utilisationAt(start + 2000) > 0.7, 'saturated');
  // No batch finishes any more: the open window's idle time brings it down when read.
  t.ok(meter.utilisationAt(start + 12_000) < 0.5, 'quiet afterwards');
});

t.test('a seeded cost is used until measured, and comes back after a reset', async (t) => {
  const meter = new LoadMeter({ windowMs: 1000, bytesPerMs: BYTES_PER_MS }, 0);
  meter.seedCost(0.05);
  t.equal(meter.costPerAudioSecond, 0.05);
  meter.record(20, 1000 * BYTES_PER_MS, 500);
  t.ok(Math.abs(meter.costPerAudioSecond - 0.035) < 1e-9, 'smoothed with the first measured second');
  meter.reset();
  t.equal(meter.costPerAudioSecond, 0.05);
});
