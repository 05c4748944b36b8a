// AudioWorklet processor: the microphone's samples (any rate, already mixed to mono by the node) ->
// 16 kHz mono PCM16 frames posted to the page, which sends them as binary WebSocket frames.
// Resampling is a windowed-sinc low-pass (cut-off at 90 % of 8 kHz) evaluated at each output instant,
// from a table of 64 sub-sample phases, so 44.1 kHz and 48 kHz input give the same clean 16 kHz.

const TARGET_RATE = 16000;
const PHASES = 64;

class Pcm16Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const frameMs = options?.processorOptions?.frameMs ?? 40;
    /** Input samples per output sample (`sampleRate` is the context's rate, a global here). */
    this.step = sampleRate / TARGET_RATE;
    // Cut-off in cycles per input sample; only downsampling needs it below the input's own Nyquist.
    const cutoff = 0.45 * Math.min(1, 1 / this.step);
    // Eight zero crossings of the sinc on each side.
    this.half = Math.ceil(4 / cutoff);
    this.table = new Float32Array(2 * this.half * PHASES + 1);
    for (let k = 0; k < this.table.length; k++) {
      const t = k / PHASES - this.half;
      const x = 2 * cutoff * t;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      this.table[k] = sinc * (0.5 + 0.5 * Math.cos((Math.PI * t) / this.half));
    }
    this.input = new Float32Array(8192);
    this.held = 0; // samples in `input`
    this.base = 0; // absolute index of input[0]
    this.produced = 0; // output samples so far
    this.next = 0; // absolute (fractional) input position of the next output sample
    this.frame = new Int16Array(Math.round((TARGET_RATE * frameMs) / 1000));
    this.filled = 0;
    this.sumSquares = 0;
    this.closed = false;
    this.port.onmessage = (event) => {
      if (event.data === 'flush') {
        this.resample(true);
        this.post();
        this.port.postMessage({ type: 'flushed' });
      } else if (event.data === 'close') {
        this.closed = true;
      }
    };
  }

  process(inputs) {
    const channel = inputs[0]?.[0];
    if (channel && channel.length > 0) {
      this.append(channel);
      this.resample(false);
    }
    return !this.closed;
  }

  append(samples) {
    if (this.held + samples.length > this.input.length) {
      const bigger = new Float32Array(Math.max(this.input.length * 2, this.held + samples.length));
      bigger.set(this.input.subarray(0, this.held));
      this.input = bigger;
    }
    this.input.set(samples, this.held);
    this.held += samples.length;
  }

  /** Emits every output sample whose filter window is complete (all of them at a flush). */
  resample(flushing) {
    const { half, table, input } = this;
    const end = this.base + this.held;
    while (flushing ? this.next < end : this.next + half < end) {
      const centre = this.next - this.base;
      const first = Math.max(0, Math.ceil(centre - half));
      const last = Math.min(this.held - 1, Math.floor(centre + half));
      let sum = 0;
      let weight = 0;
      for (let n = first; n <= last; n++) {
        const w = table[Math.round((n - centre + half) * PHASES)];
        sum += input[n] * w;
        weight += w;
      }
      this.emit(weight > 0 ? sum / weight : 0);
      // From the count, not by adding step: no drift, and exactly rate x seconds samples out.
      this.produced++;
      this.next = (this.produced * sampleRate) / TARGET_RATE;
    }
    // Drop the input no later output sample reaches.
    const drop = Math.min(this.held, Math.max(0, Math.floor(this.next - half) - this.base));
    if (drop > 0) {
      input.copyWithin(0, drop, this.held);
      this.held -= drop;
      this.base += drop;
    }
  }

  emit(value) {
    const clamped = Math.max(-1, Math.min(1, value));
    this.frame[this.filled++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    this.sumSquares += clamped * clamped;
    if (this.filled === this.frame.length) this.post();
  }

  /** Posts the frame so far (Int16Array is little-endian on every platform browsers run on). */
  post() {
    if (this.filled === 0) return;
    const pcm = this.frame.slice(0, this.filled).buffer;
    // Level for the meter: RMS in dBFS mapped from -60..0 dB to 0..1.
    const rms = Math.sqrt(this.sumSquares / this.filled);
    const level = Math.max(0, Math.min(1, (20 * Math.log10(rms + 1e-9) + 60) / 60));
    this.port.postMessage({ type: 'audio', pcm, level }, [pcm]);
    this.filled = 0;
    this.sumSquares = 0;
  }
}

registerProcessor('pcm16-capture', Pcm16Capture);
