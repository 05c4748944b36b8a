import t from 'tap';
import { JobQueue } from '../../src/dialogue/job-queue.js';
import { SessionLanes } from '../../src/dialogue/session-lanes.js';

interface Step {
  name: string;
  bytes: number;
  /** The step stays pending until the test resolves it. */
  gate?: Promise<void>;
  /** Runs inside the step (a synchronous step may submit more). */
  inside?: () => void;
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

function lanesRecording(limits = { maxBytes: 100, maxJobs: 10 }) {
  const ran: string[] = [];
  const lanes = new SessionLanes<Step>(limits, (sessionId, step) => {
    ran.push(`${sessionId}:${step.name}`);
    step.inside?.();
    return step.gate;
  });
  return { lanes, ran };
}

t.test('JobQueue: FIFO, bounded by bytes and by count, refusals leave it as it was', async (t) => {
  const queue = new JobQueue<{ bytes: number; id: number }>({ maxBytes: 10, maxJobs: 3 });
  t.ok(queue.push({ bytes: 6, id: 1 }));
  t.notOk(queue.push({ bytes: 5, id: 2 }), 'past maxBytes');
  t.ok(queue.push({ bytes: 4, id: 3 }));
  t.ok(queue.push({ bytes: 0, id: 4 }));
  t.notOk(queue.push({ bytes: 0, id: 5 }), 'past maxJobs');
  t.equal(queue.bytes, 10);
  t.same([queue.shift()?.id, queue.shift()?.id, queue.shift()?.id, queue.shift()], [1, 3, 4, undefined]);
  t.equal(queue.size, 0);
  t.equal(queue.bytes, 0);
  t.ok(queue.push({ bytes: 10, id: 6 }), 'room again once emptied');
});

t.test('an idle session runs a job at once; a pending job makes later ones of that session wait, others not', async (t) => {
  const { lanes, ran } = lanesRecording();
  const first = gate();
  lanes.submit('a', { name: 'end', bytes: 0, gate: first.promise });
  lanes.submit('a', { name: 'audio1', bytes: 10 });
  lanes.submit('b', { name: 'other', bytes: 0 });
  lanes.submit('a', { name: 'audio2', bytes: 10 });
  t.same(ran, ['a:end', 'b:other'], 'session b is not held up by session a');
  t.ok(lanes.isBusy('a'));
  first.open();
  await first.promise;
  await new Promise((resolve) => setImmediate(resolve));
  t.same(ran, ['a:end', 'b:other', 'a:audio1', 'a:audio2'], 'in order once the pending job settled');
  t.notOk(lanes.isBusy('a'), 'the lane is gone when idle');
});

t.test('a full queue refuses; firstRefusal is true once per busy stretch', async (t) => {
  const { lanes } = lanesRecording({ maxBytes: 25, maxJobs: 10 });
  const pending = gate();
  lanes.submit('a', { name: 'end', bytes: 0, gate: pending.promise });
  t.ok(lanes.submit('a', { name: 'x', bytes: 20 }));
  t.notOk(lanes.submit('a', { name: 'y', bytes: 20 }), 'over the byte bound');
  t.ok(lanes.firstRefusal('a'));
  t.notOk(lanes.firstRefusal('a'), 'reported once');
  pending.open();
  await pending.promise;
  await new Promise((resolve) => setImmediate(resolve));
  const again = gate();
  lanes.submit('a', { name: 'end2', bytes: 0, gate: again.promise });
  t.ok(lanes.firstRefusal('a'), 'a new busy stretch may report again');
  again.open();
});

t.test('submitFirst: held jobs run before what was queued after them, also from inside a running job', async (t) => {
  const { lanes, ran } = lanesRecording();
  const pending = gate();
  lanes.submit('a', { name: 'end', bytes: 0, gate: pending.promise });
  lanes.submit('a', { name: 'resume', bytes: 0, inside: () => lanes.submitFirst('a', [{ name: 'held1', bytes: 5 }, { name: 'held2', bytes: 5 }]) });
  lanes.submit('a', { name: 'later', bytes: 5 });
  pending.open();
  await pending.promise;
  await new Promise((resolve) => setImmediate(resolve));
  t.same(ran, ['a:end', 'a:resume', 'a:held1', 'a:held2', 'a:later']);

  const idle = lanesRecording();
  idle.lanes.submit('a', { name: 'resume', bytes: 0, inside: () => idle.lanes.submitFirst('a', [{ name: 'held1', bytes: 5 }]) });
  idle.lanes.submit('a', { name: 'later', bytes: 5 });
  t.same(idle.ran, ['a:resume', 'a:held1', 'a:later'], 'on an idle lane too');
});
