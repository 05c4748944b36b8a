// Raises a stream's sample rate by a whole factor before libvosk sees it. libvosk resamples audio above
// the model's rate itself, but refuses audio below it ("Sampling frequency mismatch", the recogniser is
// created but every accept_waveform fails): an 8 kHz telephone stream on a 16 kHz model needs this.
//
// Polyphase interpolation with a Hann-windowed sinc low-pass at the input's Nyquist frequency: zero
// stuffing by `factor` would mirror the input's spectrum into the band above it (an 8 kHz stream's 3.4 kHz
// tone would also appear at 4.6 kHz, where the model hears a different sound); the filter removes those
// images. 32 taps per phase put the transition band within about an eighth of the input rate of its
// Nyquist frequency, at 32 multiply-adds per output sample (0.5 M/s for an 8 kHz stream).

/** Input samples each output sample is computed from. */
const TAPS_PER_PHASE = 32;

/** The whole factor that lifts `inputRateHz` to at least `modelRateHz` (1 when it already is). */
export function upsampleFactor(inputRateHz: number, modelRateHz: number): number {
  return inputRateHz >= modelRateHz ? 1 : Math.ceil(modelRateHz / inputRateHz);
}

/** One stream's interpolator: keeps the last input samples between calls, so pieces join seamlessly. */
export class Upsampler {
  readonly factor: number;
  /** coefficients[p * TAPS_PER_PHASE + i] = h[p + i * factor]: the taps of output phase p. */
  readonly #coefficients: Float32Array;
  /** The last TAPS_PER_PHASE - 1 input samples, oldest first, then room for the next piece. */
  #window: Float32Array;

  constructor(factor: number) {
    if (!Number.isInteger(factor) || factor < 2 || factor > 16) throw new RangeError(`upsampling factor must be 2..16, got ${factor}`);
    this.factor = factor;
    const length = TAPS_PER_PHASE * factor;
    const centre = (length - 1) / 2;
    this.#coefficients = new Float32Array(length);
    for (let n = 0; n < length; n++) {
      // Cut-off at the input's Nyquist frequency, 0.5 / factor cycles per output sample; the gain of
      // `factor` restores the amplitude the zero stuffing divided.
      const x = (n - centre) / factor;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const hann = 0.5 - 0.5 * Math.cos((2 * Math.PI * (n + 0.5)) / length);
      const phase = n % factor;
      const tap = (n - phase) / factor;
      this.#coefficients[phase * TAPS_PER_PHASE + tap] = sinc * hann;
    }
    this.#window = new Float32Array(TAPS_PER_PHASE - 1 + 4096);
  }

  /** Writes `input.length * factor` samples into `output` (which must be at least that long). */
  process(input: Int16Array, output: Int16Array): void {
    const history = TAPS_PER_PHASE - 1;
    if (this.#window.length < history + input.length) {
      const grown = new Float32Array(history + input.length);
      grown.set(this.#window.subarray(0, history));
      this.#window = grown;
    }
    const window = this.#window;
    for (let j = 0; j < input.length; j++) window[history + j] = input[j]!;
    const factor = this.factor;
    const coefficients = this.#coefficients;
    for (let j = 0; j < input.length; j++) {
      // window[history + j - i] is input sample j - i.
      const newest = history + j;
      for (let phase = 0; phase < factor; phase++) {
        const base = phase * TAPS_PER_PHASE;
        let sum = 0;
        for (let i = 0; i < TAPS_PER_PHASE; i++) sum += coefficients[base + i]! * window[newest - i]!;
        output[j * factor + phase] = sum > 32767 ? 32767 : sum < -32768 ? -32768 : Math.round(sum);
      }
    }
    // Keep the newest samples for the next piece.
    window.copyWithin(0, input.length, input.length + history);
  }
}
