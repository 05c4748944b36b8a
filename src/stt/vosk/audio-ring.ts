// The SharedArrayBuffer layout shared by one worker slot and the main thread. This module is the only
// place that computes byte offsets into it.
//
// Layout: one SharedArrayBuffer per worker slot, cut into `streams` equal regions of `regionBytes`; the
// stream with handle h owns bytes [h * regionBytes, (h + 1) * regionBytes). Each region is a ring of its
// own, so a stream's writes stay contiguous (small frames coalesce into one piece without any copy) and
// a slow stream can never overwrite another one's audio.
//
// Three byte counters per handle, kept as plain numbers on the main thread (monotonic, exact up to 2^53):
//   released <= dispatched <= written
//   written    bytes copied in by write()
//   dispatched bytes handed to the worker as (offset, length) pieces
//   released   bytes the worker confirmed it consumed (the batch that carried them came back)
// Free space is regionBytes - (written - released): audio is never overwritten before it was decoded.
// The worker only reads [offset, offset + length) of pieces it was given, so nothing else is shared.

export interface AudioRingOptions {
  /** Stream regions in this ring (the slot's maximum number of concurrent streams). */
  streams: number;
  /** Bytes per stream region; rounded up to an even number. */
  regionBytes: number;
}

/** Main-thread owner of one slot's ring: copies audio in and hands out pieces. */
export class AudioRing {
  readonly buffer: SharedArrayBuffer;
  readonly streams: number;
  readonly regionBytes: number;
  /** Ring byte offset of the piece returned by the last takePiece() (read it right after the call). */
  pieceOffset = 0;
  readonly #bytes: Uint8Array;
  readonly #written: Float64Array;
  readonly #dispatched: Float64Array;
  readonly #released: Float64Array;

  constructor(options: AudioRingOptions) {
    const regionBytes = options.regionBytes + (options.regionBytes % 2);
    if (!Number.isInteger(options.streams) || options.streams < 1) {
      throw new RangeError(`streams must be a positive integer, got ${options.streams}`);
    }
    if (!Number.isInteger(regionBytes) || regionBytes < 2) {
      throw new RangeError(`regionBytes must be an integer >= 2, got ${options.regionBytes}`);
    }
    // Offsets travel as int32 in tasks.
    if (options.streams * regionBytes > 0x7fffffff) {
      throw new RangeError(`ring too large: ${options.streams} streams x ${regionBytes} bytes exceeds 2 GiB`);
    }
    this.streams = options.streams;
    this.regionBytes = regionBytes;
    this.buffer = new SharedArrayBuffer(options.streams * regionBytes);
    this.#bytes = new Uint8Array(this.buffer);
    this.#written = new Float64Array(options.streams);
    this.#dispatched = new Float64Array(options.streams);
    this.#released = new Float64Array(options.streams);
  }

  /** Bytes the stream may still write before its region is full. */
  freeBytes(handle: number): number {
    return this.regionBytes - (this.#written[handle]! - this.#released[handle]!);
  }

  /**
   * Copies `pcm` into the stream's region (the one copy of the audio). Returns false, copying nothing,
   * when the region lacks room: the worker is that far behind.
   */
  write(handle: number, pcm: Uint8Array): boolean {
    const length = pcm.byteLength;
    if (length > this.freeBytes(handle)) return false;
    const written = this.#written[handle]!;
    const start = handle * this.regionBytes;
    const at = written % this.regionBytes;
    const room = this.regionBytes - at;
    if (length <= room) {
      this.#bytes.set(pcm, start + at);
    } else {
      // Wraps: two copies (only at the region's end).
      this.#bytes.set(pcm.subarray(0, room), start + at);
      this.#bytes.set(pcm.subarray(room), start);
    }
    this.#written[handle] = written + length;
    return true;
  }

  /** Written but not yet dispatched bytes, rounded down to whole 16-bit samples. */
  undispatchedBytes(handle: number): number {
    const pending = this.#written[handle]! - this.#dispatched[handle]!;
    return pending - (pending % 2);
  }

  /**
   * Dispatches the next contiguous piece of at most `maxBytes` (even) and returns its length (0 when
   * nothing is pending). Its ring offset is in `pieceOffset`. An odd trailing byte stays for later.
   */
  takePiece(handle: number, maxBytes: number): number {
    const dispatched = this.#dispatched[handle]!;
    const at = dispatched % this.regionBytes;
    let length = Math.min(this.undispatchedBytes(handle), maxBytes - (maxBytes % 2), this.regionBytes - at);
    if (length <= 0) return 0;
    length -= length % 2;
    this.pieceOffset = handle * this.regionBytes + at;
    this.#dispatched[handle] = dispatched + length;
    return length;
  }

  /** The worker consumed `length` more bytes of this stream: their room can be written again. */
  release(handle: number, length: number): void {
    this.#released[handle] = this.#released[handle]! + length;
  }

  /** Empties the region (a new stream takes the handle, or the slot's worker was replaced). */
  reset(handle: number): void {
    this.#written[handle] = 0;
    this.#dispatched[handle] = 0;
    this.#released[handle] = 0;
  }
}

/** Worker-side view of a ring: reads the pieces named by tasks. */
export class AudioRingReader {
  readonly #bytes: Uint8Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#bytes = new Uint8Array(buffer);
  }

  /** The bytes of one piece, without copying. */
  piece(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.#bytes.byteLength) {
      throw new RangeError(`piece [${offset}, +${length}) is outside the ring (${this.#bytes.byteLength} bytes)`);
    }
    return this.#bytes.subarray(offset, offset + length);
  }
}
