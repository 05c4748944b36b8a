// Behaviour of src/stt/vosk/admission.ts with scripted workers and explicit times: what is admitted,
// what is refused and why, and how the latency limit learns.
import t from 'tap';
import { Admission, type AdmissionOptions, type AdmissionWorker, type LimitChange } from '../../src/stt/vosk/admission.js';

class Worker implements AdmissionWorker {
  threadId: number | null;
  usedHandles = 0;
  admittedWeight = 0;
  constructor(
    readonly index: number,
    public costPerAudioSecond: number,
    readonly handles = 512,
    public isCostMeasured = true,
  ) {
    this.threadId = index + 1;
  }
  get freeHandles(): number {
    return this.handles - this.usedHandles;
  }
  take(weight = 1): void {
    this.usedHandles += 1;
    this.admittedWeight += weight;
  }
  drop(weight = 1): void {
    this.usedHandles -= 1;
    this.admittedWeight -= weight;
  }
}

function setup(costs: number[], options: Partial<AdmissionOptions> = {}): { workers: Worker[]; admission: Admission<Worker> } {
  const workers = costs.map((cost, i) => new Worker(i, cost));
  return { workers, admission: new Admission(workers, { maxUtilisation: 0.9, targetFinishLatencyMs: 150, ...options }) };
}

/** Admits streams until refused; returns how many were admitted. */
function fill(admission: Admission<Worker>, weight = 1): number {
  let admitted = 0;
  for (let worker = admission.choose(weight); worker !== null; worker = admission.choose(weight)) {
    worker.take(weight);
    admitted += 1;
  }
  return admitted;
}

/** Sets the streams open: `open` default-rate streams spread over the workers. */
function occupy(workers: Worker[], open: number): void {
  workers.forEach((worker, i) => {
    const share = Math.floor(open / workers.length) + (i < open % workers.length ? 1 : 0);
    worker.usedHandles = share;
    worker.admittedWeight = share;
  });
}

/**
 * `count` final texts from `start` on (1 ms apart), the last `slow` of them late, with `open` streams
 * open; the streams were admitted at `openedAt` (default: 8 s before).
 */
function finals(admission: Admission<Worker>, workers: Worker[], start: number, count: number, slow: number, open: number, openedAt?: number): void {
  occupy(workers, open);
  for (let i = 0; i < count; i++) admission.recordFinal(i >= count - slow ? 400 : 50, openedAt ?? start - 8000, start + i);
}

t.test('admits under capacity, on the least-loaded worker', async (t) => {
  const { admission } = setup([0.1, 0.1]);
  t.equal(admission.capacity(), 18, '0.9 / 0.1 = 9 streams per worker');
  const order: number[] = [];
  for (let i = 0; i < 4; i++) {
    const worker = admission.choose(1)!;
    order.push(worker.index);
    worker.take();
  }
  t.same(order, [0, 1, 0, 1], 'alternates: the emptier worker takes the next stream');
  t.equal(admission.refusal(), null);
  t.equal(admission.canAdmit(), true);
});

t.test('every worker is predicted with the mean of the measured costs: a burst is shared, not piled on one', async (t) => {
  // The two identical workers measured 0.07 and 0.1 within one run: the mean 0.085 bounds both.
  const { workers, admission } = setup([0.07, 0.1]);
  t.equal(admission.capacity(), 20, '2 x floor(0.9 / 0.085)');
  t.equal(fill(admission), 20);
  t.same(
    workers.map((w) => w.usedHandles),
    [10, 10],
  );
});

t.test('refuses past capacity with a typed reason, and admits again when a stream ends', async (t) => {
  const { workers, admission } = setup([0.1, 0.1]);
  t.equal(fill(admission), 18);
  t.same(
    workers.map((w) => w.usedHandles),
    [9, 9],
  );
  const refusal = admission.refusal();
  t.equal(refusal?.reason, 'capacity');
  t.match(refusal?.details, /^capacity: 18 of 18 streams, max utilisation 0\.9; worker 0: 9 streams, predicted load 0\.90 \(cost 0\.1000 s per audio-s, its own 0\.1000\); worker 1: 9 streams/);
  t.equal(admission.canAdmit(), false);
  workers[1]!.drop();
  t.equal(admission.choose(1)?.index, 1, 'room again on the worker that has it');
});

t.test('a worker still on the start-up seed is predicted with the measured workers\' mean, not its seed', async (t) => {
  // The seed (0.15) is dearer than what workers 0 and 1 measured (0.08, 0.1): worker 2 has not measured yet.
  const workers = [new Worker(0, 0.08), new Worker(1, 0.1), new Worker(2, 0.15, 512, false)];
  const admission = new Admission(workers, { maxUtilisation: 0.9, targetFinishLatencyMs: 150 });
  t.equal(admission.capacity(), 30, 'three workers at the mean 0.09');
  t.equal(fill(admission), 30);
  t.same(
    workers.map((w) => w.usedHandles),
    [10, 10, 10],
  );
  t.match(admission.refusal()?.details, /worker 2: 10 streams, predicted load 0\.90 \(cost 0\.0900 s per audio-s, its own not measured yet\)/);
  workers[0]!.isCostMeasured = false;
  workers[1]!.isCostMeasured = false;
  t.equal(admission.capacity(), 11 + 9 + 6, 'nobody measured: each worker its own seed');
});

t.test('a stream at a dearer rate needs room for its weight', async (t) => {
  const { admission } = setup([0.1]);
  t.equal(fill(admission, 3), 3, '48 kHz streams (weight 3): 0.9 / 0.3');
  t.equal(admission.choose(1)?.index, undefined, 'full for a default-rate stream too: 3 streams at weight 3 = 0.9');
});

t.test('first burst: a fresh server admits only its computed capacity, however many come at once', async (t) => {
  // The seed: 0.003 s per audio-s (a calibrated tone model), two workers, maxUtilisation 0.9.
  const { admission } = setup([0.003, 0.003]);
  t.equal(admission.limit(), 600, 'the latency limit starts at the capacity');
  t.equal(fill(admission), 600, '900 offered at once, 600 admitted');
  t.equal(admission.refusal()?.reason, 'capacity');
});

t.test('workers that are not running take nothing; with none, the reason says so', async (t) => {
  const { workers, admission } = setup([0.1, 0.1]);
  workers[0]!.threadId = null;
  t.equal(admission.capacity(), 9);
  t.equal(fill(admission), 9, 'only the running worker');
  workers[1]!.threadId = null;
  t.equal(admission.refusal()?.reason, 'no-worker');
});

t.test('an unknown cost (0) is bounded by handles only', async (t) => {
  const workers = [new Worker(0, 0, 4)];
  const admission = new Admission(workers, { maxUtilisation: 0.9, targetFinishLatencyMs: 150 });
  t.equal(fill(admission), 4);
});

t.test('judged every 40 final texts: more than 5 % late sets the limit to 90 % of the streams open', async (t) => {
  const changes: [LimitChange, string][] = [];
  const { workers, admission } = setup([0.002, 0.002], { onLimitChange: (change, direction) => changes.push([change, direction]) });
  t.equal(admission.limit(), 900);
  finals(admission, workers, 0, 39, 3, 300);
  t.equal(admission.limit(), 900, '39 final texts: not judged yet');
  finals(admission, workers, 100, 1, 0, 300);
  t.equal(admission.limit(), 270, 'the 40th: 3 late (7.5 %)');
  t.same(changes, [[{ limit: 270, openStreams: 300, finishes: 40, slow: 3 }, 'decrease']]);
  t.equal(admission.choose(1), null, '300 open, limit 270');
  const refusal = admission.refusal();
  t.equal(refusal?.reason, 'latency-limit');
  t.match(refusal?.details, /^latency-limit: limit 270 streams \(over 150 ms for 3 of 40 final texts with 300 streams open\)/);
});

t.test('a clear overload is judged after ten final texts', async (t) => {
  const { workers, admission } = setup([0.002, 0.002]);
  finals(admission, workers, 0, 9, 9, 30);
  t.equal(admission.limit(), 900, 'nine: too few to judge');
  finals(admission, workers, 100, 1, 1, 30);
  t.equal(admission.limit(), 27, 'ten, all late: 90 % of 30');
  finals(admission, workers, 3000, 10, 2, 27, 2500);
  t.equal(admission.limit(), 27, 'ten with two late (20 %): wait for 40');
});

t.test('the limit rises by 2 % only after 40 final texts on time with the limit in use; one or two late keep it', async (t) => {
  const changes: [LimitChange, string][] = [];
  const { workers, admission } = setup([0.002, 0.002], { onLimitChange: (change, direction) => changes.push([change, direction]) });
  finals(admission, workers, 0, 40, 20, 500);
  t.equal(admission.limit(), 450);
  finals(admission, workers, 3000, 40, 0, 400, 2500);
  t.equal(admission.limit(), 450, 'on time but with 400 of 450 open: the limit was not tested');
  finals(admission, workers, 6000, 40, 0, 445, 5500);
  t.equal(admission.limit(), 459, 'on time with 445 open (98 %): +2 %');
  finals(admission, workers, 9000, 40, 1, 459, 8500);
  t.equal(admission.limit(), 459, 'one late final text: kept, not raised');
  finals(admission, workers, 12_000, 40, 2, 459, 11_500);
  t.equal(admission.limit(), 459, 'two late (5 %): kept, a single late text is not an overload');
  t.same(
    changes.map(([change, direction]) => [change.limit, direction]),
    [
      [450, 'decrease'],
      [459, 'increase'],
    ],
  );
});

t.test('a burst is judged on the most streams open in the last 2 s: its late texts come when most have ended', async (t) => {
  const { workers, admission } = setup([0.002, 0.002]);
  // 570 speakers end together: the first 40 final texts with all of them open, on time.
  finals(admission, workers, 0, 40, 0, 570);
  t.equal(admission.limit(), 900, 'on time, and nothing learned to raise');
  // 400 ms later, 130 still open, four of the next 40 late.
  finals(admission, workers, 400, 40, 4, 130);
  t.equal(admission.limit(), 513, '90 % of the 570, not of the 130');
  // Streams admitted later, judged more than 2 s after: on what is open then.
  finals(admission, workers, 5000, 40, 4, 300, 4000);
  t.equal(admission.limit(), 270);
});

t.test('the limit never passes the capacity the workers measure, nor drops below one stream per worker', async (t) => {
  const { workers, admission } = setup([0.01, 0.01]);
  t.equal(admission.limit(), 180);
  workers[0]!.costPerAudioSecond = 0.02;
  workers[1]!.costPerAudioSecond = 0.02;
  t.equal(admission.limit(), 90, 'the workers measured a dearer cost: the capacity follows');
  finals(admission, workers, 0, 40, 40, 1);
  t.equal(admission.limit(), 2, 'floor: one stream per worker');
});

t.test('streams are counted by cost weight: the limit and the capacity share one unit whatever the rates', async (t) => {
  // An engine whose default rate is 48 kHz: a 16 kHz stream weighs a third.
  const { workers, admission } = setup([0.1, 0.1]);
  t.equal(admission.capacity(), 18);
  t.equal(fill(admission, 1 / 3), 54, 'three times as many light streams as default-rate ones');
  t.same(
    workers.map((w) => w.usedHandles),
    [27, 27],
  );
  t.equal(admission.refusal(1 / 3)?.reason, 'capacity');
  t.match(admission.refusal()?.details, /^capacity: 18 of 18 streams/);
});

t.test('one late burst lowers the limit once: its later final texts (fewer streams open) do not cut again', async (t) => {
  const changes: [LimitChange, string][] = [];
  const { workers, admission } = setup([0.01, 0.01], { onLimitChange: (change, direction) => changes.push([change, direction]) });
  // A burst of 180 streams admitted at 0 ends over two seconds, every final text late.
  finals(admission, workers, 8000, 40, 40, 180, 0);
  t.equal(admission.limit(), 162, '90 % of the 180 open');
  finals(admission, workers, 9000, 140, 140, 90, 0);
  t.equal(admission.limit(), 162, "the same burst's later final texts: not 81");
  // Streams admitted under the new limit that are late again do lower it.
  finals(admission, workers, 20_000, 40, 40, 160, 10_500);
  t.equal(admission.limit(), 144);
  t.same(
    changes.map(([change]) => change.limit),
    [162, 144],
  );
});
