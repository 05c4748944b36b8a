import t from 'tap';
import { RequestManager } from '../../src/dialogue/request-manager.js';

t.test('starting a request aborts its predecessor of the same kind only', async (t) => {
  const requests = new RequestManager();
  const firstGenerate = requests.start('s1', 'generate');
  const predict = requests.start('s1', 'predict');
  const secondGenerate = requests.start('s1', 'generate');
  t.ok(firstGenerate.signal.aborted);
  t.match(firstGenerate.signal.reason, { code: 'REQUEST_CANCELLED' });
  t.notOk(firstGenerate.isCurrent());
  t.ok(secondGenerate.isCurrent());
  t.ok(predict.isCurrent(), 'a new generation does not touch the prediction');
  t.equal(requests.inFlight, 2);
});

t.test('a superseded request that finishes late does not retire its successor (the old backend race)', async (t) => {
  const requests = new RequestManager();
  const old = requests.start('s1', 'generate');
  const current = requests.start('s1', 'generate');
  // The old task's completion handler runs after the new one started: it must be a no-op.
  requests.finish(old);
  t.ok(current.isCurrent(), 'the successor is still current');
  t.equal(requests.currentRequestId('s1', 'generate'), current.requestId);
  t.equal(requests.inFlight, 1);
  // And cancelling still reaches the successor.
  requests.cancel('s1');
  t.ok(current.signal.aborted, 'cancel aborts the successor');
  t.equal(requests.inFlight, 0);
});

t.test('cancel by kind, finish, and cancelAll', async (t) => {
  const requests = new RequestManager();
  const generate = requests.start('s1', 'generate');
  const predict = requests.start('s1', 'predict');
  const other = requests.start('s2', 'generate');
  requests.cancel('s1', ['predict']);
  t.ok(predict.signal.aborted);
  t.notOk(generate.signal.aborted);
  requests.finish(generate);
  t.notOk(generate.isCurrent(), 'finished requests are no longer current');
  t.notOk(generate.signal.aborted, 'finishing does not abort');
  requests.cancelAll();
  t.ok(other.signal.aborted);
  t.equal(requests.inFlight, 0);
});
