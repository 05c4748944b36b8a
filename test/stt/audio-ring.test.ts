import t from 'tap';
import { AudioRing, AudioRingReader } from '../../src/stt/vosk/audio-ring.js';

t.test('pieces are contiguous, even, and wrap at the region end', async (t) => {
  const ring = new AudioRing({ streams: 2, regionBytes: 10 });
  const reader = new AudioRingReader(ring.buffer);
  t.ok(ring.write(1, Uint8Array.of(1, 2, 3, 4, 5, 6, 7)));
  t.equal(ring.undispatchedBytes(1), 6, 'the odd trailing byte waits');
  t.equal(ring.takePiece(1, 4), 4);
  t.equal(ring.pieceOffset, 10, 'stream 1 region starts after stream 0');
  t.same([...reader.piece(ring.pieceOffset, 4)], [1, 2, 3, 4]);
  t.equal(ring.takePiece(1, 100), 2);
  t.same([...reader.piece(ring.pieceOffset, 2)], [5, 6]);
  t.equal(ring.freeBytes(1), 3);
  t.notOk(ring.write(1, new Uint8Array(4)), 'no room before the worker released');
  ring.release(1, 6);
  t.ok(ring.write(1, Uint8Array.of(8, 9, 10, 11, 12)), 'wraps around the region end');
  t.equal(ring.takePiece(1, 100), 4, 'a piece stops at the region end');
  t.same([...reader.piece(ring.pieceOffset, 4)], [7, 8, 9, 10]);
  t.equal(ring.takePiece(1, 100), 2);
  t.equal(ring.pieceOffset, 10, 'then continues at the region start');
  t.same([...reader.piece(ring.pieceOffset, 2)], [11, 12]);
  t.equal(ring.undispatchedBytes(0), 0, 'stream 0 untouched');
});

t.test('a ring that does not fit int32 offsets is refused', async (t) => {
  t.throws(() => new AudioRing({ streams: 70_000, regionBytes: 64_000 }), RangeError);
});
