import t from 'tap';
import { LoadMeter, type BatchCost } from '../../src/stt/vosk/load-meter.js';

const BYTES_PER_MS = 32;

function batch(busyMs: number, steadyBusyMs: number, steadyAudioBytes: number, finalBusyMs = 0, finalAudioBytes = 0): BatchCost {
  return { busyMs, steadyBusyMs, steadyAudioBytes, finalBusyMs, finalAudioBytes };
}

t.test('a worker that was saturated and went quiet reads as idle again', async (t) => {
  const start = 0;
  const meter = new LoadMeter({ windowMs: 1000, bytesPerMs: BYTES_PER_MS }, start);
  // Two windows of full load.
  meter.record(batch(1000, 1000, 1000 * BYTES_PER_MS), start + 1000);
  meter.record(batch(1000, 1000, 1000 * BYTES_PER_MS), start + 2000);
  t.ok(meter.utilisationAt(start + 2000) > 0.7, 'saturated');
  // No batch finishes any more: the open window's idle time brings it down when read.
  t.ok(meter.utilisationAt(start + 12_000) < 0.5, 'quiet afterwards');
});

t.test('a seeded cost is used until measured, and comes back after a reset', async (t) => {
  const meter = new LoadMeter({ windowMs: 1000, bytesPerMs: BYTES_PER_MS }, 0);
  meter.seedCost(0.05);
  t.equal(meter.costPerAudioSecond, 0.05);
  meter.record(batch(300, 300, 10_000 * BYTES_PER_MS), 500);
  t.equal(meter.costPerAudioSecond, 0.05, 'ten seconds of audio in half a second of wall time is not a sample yet');
  meter.record(batch(300, 300, 10_000 * BYTES_PER_MS), 1000);
  t.ok(Math.abs(meter.costPerAudioSecond - 0.03) < 1e-9, 'the measured cost replaces the seed');
  meter.reset(1000);
  t.equal(meter.costPerAudioSecond, 0.05);
});

t.test('a worker less than half busy measures nothing: one stream alone is cheaper than many sharing the cores', async (t) => {
  const meter = new LoadMeter({ windowMs: 1000, bytesPerMs: BYTES_PER_MS }, 0);
  meter.seedCost(0.1);
  // One stream: 54 ms of decoding per second of audio, the worker idle 95 % of the time.
  meter.record(batch(54, 54, 1000 * BYTES_PER_MS), 1000);
  t.equal(meter.isCostMeasured, false);
  t.equal(meter.costPerAudioSecond, 0.1, 'the seed stays');
  // Eleven streams: 0.076 s per audio-s, 84 % busy.
  meter.record(batch(836, 836, 11_000 * BYTES_PER_MS), 2000);
  t.equal(meter.isCostMeasured, true);
  t.ok(Math.abs(meter.costPerAudioSecond - 0.076) < 1e-9, `measured under load (${meter.costPerAudioSecond})`);
  // Quiet again: the light load's samples do not pull the cost down.
  meter.record(batch(54, 54, 1000 * BYTES_PER_MS), 3000);
  t.ok(Math.abs(meter.costPerAudioSecond - 0.076) < 1e-9, 'kept');
});

t.test('time spent outside steady audio counts as load, not as cost per audio second', async (t) => {
  const meter = new LoadMeter({ windowMs: 1000, bytesPerMs: BYTES_PER_MS }, 0);
  // One second: 500 ms decoding 10 s of steady audio plus 300 ms of final texts and new recognisers.
  meter.record(batch(800, 500, 10_000 * BYTES_PER_MS), 1000);
  t.ok(Math.abs(meter.costPerAudioSecond - 0.05) < 1e-9, `cost 0.05 (${meter.costPerAudioSecond})`);
  t.ok(Math.abs(meter.utilisation - 0.4) < 1e-9, `utilisation counts all 800 ms (smoothed: ${meter.utilisation})`);
});

t.test('final texts are a cost per recording, spread over the audio of the recordings they ended', async (t) => {
  const meter = new LoadMeter({ windowMs: 1000, bytesPerMs: BYTES_PER_MS }, 0);
  meter.seedCost(0.2);
  t.equal(meter.isCostMeasured, false);
  // Steady audio: 0.05 s per audio-s. Final texts of 40 ms each for 4 s recordings: 0.01 s per audio-s more.
  meter.record(batch(500, 500, 10_000 * BYTES_PER_MS), 1000);
  t.equal(meter.isCostMeasured, true);
  t.ok(Math.abs(meter.costPerAudioSecond - 0.05) < 1e-9, `steady cost only until the final texts span 20 s of recordings (${meter.costPerAudioSecond})`);
  for (let i = 0; i < 4; i++) meter.record(batch(40, 0, 0, 40, 4000 * BYTES_PER_MS), 1100 + i);
  t.ok(Math.abs(meter.costPerAudioSecond - 0.05) < 1e-9, '16 s of recordings: not a sample yet');
  meter.record(batch(40, 0, 0, 40, 4000 * BYTES_PER_MS), 1200);
  t.ok(Math.abs(meter.costPerAudioSecond - 0.06) < 1e-9, `0.05 + 200 ms / 20 s (${meter.costPerAudioSecond})`);
  meter.reset(2000);
  t.equal(meter.costPerAudioSecond, 0.2, 'a reset forgets both parts');
  t.equal(meter.isCostMeasured, false);
});

t.test('the steady cost is the mean of the last eight samples: one cheap or dear second moves it an eighth', async (t) => {
  const meter = new LoadMeter({ windowMs: 1000, bytesPerMs: BYTES_PER_MS }, 0);
  const second = (at: number, cost: number): void => meter.record(batch(600, 600, (600 / cost) * BYTES_PER_MS), at);
  second(1000, 0.0037);
  second(2000, 0.0027);
  t.ok(Math.abs(meter.costPerAudioSecond - 0.0032) < 1e-12, `the mean of the two (${meter.costPerAudioSecond})`);
  for (let i = 3; i <= 10; i++) second(i * 1000, 0.003);
  t.ok(Math.abs(meter.costPerAudioSecond - 0.003) < 1e-12, `eight samples later the first two are forgotten (${meter.costPerAudioSecond})`);
});
