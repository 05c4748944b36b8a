import t from 'tap';
import { AdaptiveStreamLimit, type StreamLimitChange } from '../../src/stt/vosk/stream-limit.js';

/** `count` finishes spread over the window starting at `start`, `slow` of them over the target. */
function finishes(limit: AdaptiveStreamLimit, start: number, count: number, slow: number, openStreams: number): void {
  for (let i = 0; i < count; i++) limit.record(i < slow ? 500 : 50, openStreams, start + (i * 900) / count);
}

t.test('no limit until final texts come late', async (t) => {
  const limit = new AdaptiveStreamLimit({ targetMs: 200, floor: 2 });
  finishes(limit, 0, 100, 0, 600);
  t.equal(limit.limitAt(2000), Number.POSITIVE_INFINITY);
  finishes(limit, 3000, 100, 5, 600);
  t.equal(limit.limitAt(5000), Number.POSITIVE_INFINITY, '5 % late is within the target');
});

t.test('a window with over 5 % late lowers the limit below the streams open then, judged without waiting for the next finish', async (t) => {
  const changes: [StreamLimitChange, string][] = [];
  const limit = new AdaptiveStreamLimit({ targetMs: 200, floor: 2, onChange: (change, direction) => changes.push([change, direction]) });
  finishes(limit, 0, 100, 10, 625);
  t.equal(limit.limitAt(999), Number.POSITIVE_INFINITY, 'the window is still open');
  t.equal(limit.limitAt(1001), 562);
  t.same(changes, [[{ limit: 562, openStreams: 625, finishes: 100, slow: 10 }, 'decrease']]);
  t.same(limit.lastDecrease, { limit: 562, openStreams: 625, finishes: 100, slow: 10 });
});

t.test('windows with too few finishes are not judged', async (t) => {
  const limit = new AdaptiveStreamLimit({ targetMs: 200, floor: 2 });
  finishes(limit, 0, 9, 9, 625);
  t.equal(limit.limitAt(5000), Number.POSITIVE_INFINITY);
});

t.test('served well close to the limit, it grows again; far below it, it stays', async (t) => {
  const limit = new AdaptiveStreamLimit({ targetMs: 200, floor: 2 });
  finishes(limit, 0, 100, 50, 500);
  t.equal(limit.limitAt(2000), 450);
  finishes(limit, 3000, 100, 0, 200);
  t.equal(limit.limitAt(5000), 450, 'few streams say nothing about 450');
  finishes(limit, 6000, 100, 0, 430);
  t.equal(limit.limitAt(8000), 450, '96 % of it served well: the limit was not tested');
  finishes(limit, 9000, 100, 0, 450);
  t.equal(limit.limitAt(11_000), 459, 'served at the limit: +2 %');
  finishes(limit, 12_000, 100, 1, 459);
  t.equal(limit.limitAt(14_000), 459, 'one late final text holds it');
});

t.test('never below the floor', async (t) => {
  const limit = new AdaptiveStreamLimit({ targetMs: 200, floor: 4 });
  finishes(limit, 0, 20, 20, 3);
  t.equal(limit.limitAt(2000), 4);
});
