// The start-up seed of a worker's cost: what the calibration measured on a core of its own, scaled to
// the share of a core a worker gets at capacity (every thread of the process runnable, main included).
import t from 'tap';
import { seedCost } from '../../src/stt/vosk/calibrate.js';

const close = (actual: number, expected: number): boolean => Math.abs(actual - expected) < 1e-12;

t.test('a worker at capacity gets cores / (workers + 1) of a core, at most a whole one', async (t) => {
  t.ok(close(seedCost(0.003, 2, 2), 0.0045), '2 workers and the main thread on 2 cores: two thirds of a core each');
  t.ok(close(seedCost(0.003, 1, 2), 0.003), 'one worker on 2 cores keeps a core of its own');
  t.ok(close(seedCost(0.003, 4, 2), 0.0075), '4 workers on 2 cores: 0.4 of a core each');
  t.ok(close(seedCost(0.003, 0, 2), 0.003), 'in-process: the main thread decodes on its own core');
  t.ok(close(seedCost(0, 2, 2), 0), 'no calibration, no seed');
});
