// Correctly rounded elementary functions and a fused multiply-add, for the tone-model generator.
//
// The generator must write the same bytes as the Python prototype (gen_model.py). That prototype gets
// cos/sin/exp/log from glibc's libm, which rounds these arguments correctly, while V8's Math.cos and
// friends are off by one ulp for about one value in thirty (62 of the 1600 DCT entries). Its matrix
// product runs in OpenBLAS, whose kernels accumulate with FMA, which JavaScript has no operator for.
// Both are reproduced here with exact BigInt arithmetic: slow (microseconds per call), but only used
// for a few thousand model constants.

const FRACTION_BITS = 320n;
const ONE = 1n << FRACTION_BITS;

interface ExactDouble {
  mantissa: bigint;
  exponent: number;
}

const bitsView = new DataView(new ArrayBuffer(8));

/** Splits a finite double into an integer mantissa and a power-of-two exponent, exactly. */
function decompose(x: number): ExactDouble {
  bitsView.setFloat64(0, x);
  const high = bitsView.getUint32(0);
  const low = bitsView.getUint32(4);
  const biasedExponent = (high >>> 20) & 0x7ff;
  if (biasedExponent === 0x7ff) throw new RangeError(`not a finite number: ${x}`);
  let mantissa = (BigInt(high & 0xfffff) << 32n) | BigInt(low);
  if (biasedExponent !== 0) mantissa |= 1n << 52n;
  if (high >>> 31) mantissa = -mantissa;
  return { mantissa, exponent: (biasedExponent === 0 ? 1 : biasedExponent) - 1075 };
}

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/**
 * Rounds mantissa * 2^exponent to the nearest double (ties to even). Exact for results in the normal
 * range, which is all the generator produces; a subnormal result could be rounded twice.
 */
function roundToDouble(mantissa: bigint, exponent: number): number {
  if (mantissa === 0n) return 0;
  const isNegative = mantissa < 0n;
  let magnitude = isNegative ? -mantissa : mantissa;
  // Keep 64 significant bits plus a sticky bit: Number(bigint) then rounds exactly as the full value would.
  const excessBits = bitLength(magnitude) - 64;
  if (excessBits > 0) {
    const shift = BigInt(excessBits);
    const isInexact = (magnitude & ((1n << shift) - 1n)) !== 0n;
    magnitude = (magnitude >> shift) | (isInexact ? 1n : 0n);
    exponent += excessBits;
  }
  let result = Number(magnitude);
  // Scale in steps so that no intermediate power of two overflows or underflows.
  while (exponent > 0) {
    const step = Math.min(exponent, 1000);
    result *= 2 ** step;
    exponent -= step;
  }
  while (exponent < 0) {
    const step = Math.max(exponent, -1000);
    result *= 2 ** step;
    exponent -= step;
  }
  return isNegative ? -result : result;
}

/** a * b + c with a single rounding, as the FMA instructions OpenBLAS uses compute it. */
export function fusedMultiplyAdd(a: number, b: number, c: number): number {
  const x = decompose(a);
  const y = decompose(b);
  const z = decompose(c);
  const productMantissa = x.mantissa * y.mantissa;
  const productExponent = x.exponent + y.exponent;
  const exponent = Math.min(productExponent, z.exponent);
  const sum =
    (productMantissa << BigInt(productExponent - exponent)) + (z.mantissa << BigInt(z.exponent - exponent));
  // An exact zero keeps IEEE's sign rules, which plain arithmetic already applies.
  return sum === 0n ? a * b + c : roundToDouble(sum, exponent);
}

// --- Fixed-point arithmetic with FRACTION_BITS fractional bits ---------------------------------------

function toFixed(x: number): bigint {
  const { mantissa, exponent } = decompose(x);
  const shift = exponent + Number(FRACTION_BITS);
  return shift >= 0 ? mantissa << BigInt(shift) : mantissa >> BigInt(-shift);
}

function multiply(a: bigint, b: bigint): bigint {
  return (a * b) >> FRACTION_BITS;
}

/** atanh(1/n) as a fixed-point value, by its power series (n >= 2 converges quickly). */
function atanhOfReciprocal(n: bigint): bigint {
  let power = ONE / n;
  let sum = 0n;
  for (let k = 1n; power !== 0n; k += 2n) {
    sum += power / k;
    power /= n * n;
  }
  return sum;
}

/** atan(1/n) as a fixed-point value. */
function atanOfReciprocal(n: bigint): bigint {
  let power = ONE / n;
  let sum = 0n;
  for (let k = 1n, sign = 1n; power !== 0n; k += 2n, sign = -sign) {
    sum += (sign * power) / k;
    power /= n * n;
  }
  return sum;
}

// Machin's formula and ln 2 = 2 atanh(1/3); both exact to the last few of the 320 fractional bits.
const PI = 16n * atanOfReciprocal(5n) - 4n * atanOfReciprocal(239n);
const HALF_PI = PI / 2n;
const LN2 = 2n * atanhOfReciprocal(3n);

/** a / b rounded to the nearest integer (b > 0). */
function divideRounded(a: bigint, b: bigint): bigint {
  return a >= 0n ? (2n * a + b) / (2n * b) : -((-2n * a + b) / (2n * b));
}

function sinOrCos(x: number, isSine: boolean): number {
  const fixed = toFixed(x);
  const quadrant = divideRounded(fixed, HALF_PI);
  const reduced = fixed - quadrant * HALF_PI;
  // sin(r + q pi/2) and cos(r + q pi/2) cycle through +-sin r and +-cos r with q mod 4.
  const phase = (((Number(quadrant % 4n) + (isSine ? 0 : 1)) % 4) + 4) % 4;
  const useSine = phase % 2 === 0;
  const value = taylorSeries(reduced, useSine);
  return roundToDouble(phase >= 2 ? -value : value, -Number(FRACTION_BITS));
}

/** sin r = sum (-1)^k r^(2k+1)/(2k+1)!  and  cos r = sum (-1)^k r^(2k)/(2k)!, for |r| <= pi/4. */
function taylorSeries(r: bigint, isSine: boolean): bigint {
  const rSquared = multiply(r, r);
  let term = isSine ? r : ONE;
  let sum = term;
  for (let m = 2n; term !== 0n; m += 2n) {
    term = -multiply(term, rSquared) / (isSine ? m * (m + 1n) : (m - 1n) * m);
    sum += term;
  }
  return sum;
}

export function roundedSin(x: number): number {
  return sinOrCos(x, true);
}

export function roundedCos(x: number): number {
  return sinOrCos(x, false);
}

export function roundedExp(x: number): number {
  const fixed = toFixed(x);
  const powerOfTwo = divideRounded(fixed, LN2);
  const reduced = fixed - powerOfTwo * LN2;
  let term = ONE;
  let sum = ONE;
  for (let k = 1n; term !== 0n; k++) {
    term = multiply(term, reduced) / k;
    sum += term;
  }
  return roundToDouble(sum, Number(powerOfTwo) - Number(FRACTION_BITS));
}

export function roundedLog(x: number): number {
  if (!(x > 0)) throw new RangeError(`log of a non-positive number: ${x}`);
  const { mantissa, exponent } = decompose(x);
  // x = m 2^e = y 2^k with y in [1, 2); log x = k ln 2 + 2 atanh((y - 1) / (y + 1)).
  const mantissaBits = bitLength(mantissa);
  const k = exponent + mantissaBits - 1;
  const y = (mantissa << FRACTION_BITS) >> BigInt(mantissaBits - 1);
  const z = ((y - ONE) << FRACTION_BITS) / (y + ONE);
  const zSquared = multiply(z, z);
  let power = z;
  let series = 0n;
  for (let n = 1n; power !== 0n; n += 2n) {
    series += power / n;
    power = multiply(power, zSquared);
  }
  return roundToDouble(BigInt(k) * LN2 + 2n * series, -Number(FRACTION_BITS));
}
