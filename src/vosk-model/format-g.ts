// C's printf("%.<precision>g"), digit for digit, as Python's "%.9g" % x writes it.
//
// Number#toExponential rounds exact ties away from zero, while C (and Python) round them to even, so a
// value that sits exactly halfway between two precision-digit decimals is detected and rounded down
// when that keeps the last digit even.

function exponentialParts(text: string): { digits: string; exponent: number } {
  const [mantissa = '', exponent = '0'] = text.split('e');
  return { digits: mantissa.replace('.', ''), exponent: Number(exponent) };
}

/** Whether |x| equals `digits` x 10^(exponent + 1 - digits.length) exactly (x is a double). */
function isExactDecimal(magnitude: number, digits: string, exponent: number): boolean {
  const powerOfTen = exponent + 1 - digits.length;
  const decimal = BigInt(digits);
  if (powerOfTen >= 0) {
    return Number.isInteger(magnitude) && BigInt(magnitude) === decimal * 10n ** BigInt(powerOfTen);
  }
  // n / 10^p = (n / 5^p) / 2^p is a double only if 5^p divides n; scaling by 2^p is then exact.
  const fivePower = 5n ** BigInt(-powerOfTen);
  if (decimal % fivePower !== 0n) return false;
  const scaled = magnitude * 2 ** -powerOfTen;
  return Number.isInteger(scaled) && BigInt(scaled) === decimal / fivePower;
}

/** Significant digits of |x| rounded to `precision` digits, ties to even, and the decimal exponent. */
function roundedDigits(magnitude: number, precision: number): { digits: string; exponent: number } {
  const rounded = exponentialParts(magnitude.toExponential(precision - 1));
  const longer = exponentialParts(magnitude.toExponential(precision));
  if (!longer.digits.endsWith('5') || !isExactDecimal(magnitude, longer.digits, longer.exponent)) return rounded;
  const truncated = longer.digits.slice(0, -1);
  const lastDigit = Number(truncated[truncated.length - 1]);
  return lastDigit % 2 === 0 ? { digits: truncated, exponent: longer.exponent } : rounded;
}

export function formatG(x: number, precision: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  if (x === 0) return `${sign}0`;
  const significantDigits = Math.max(precision, 1);
  const { digits, exponent } = roundedDigits(Math.abs(x), significantDigits);
  if (exponent < -4 || exponent >= significantDigits) {
    const fraction = digits.slice(1).replace(/0+$/, '');
    const exponentText = String(Math.abs(exponent)).padStart(2, '0');
    return `${sign}${digits[0]}${fraction ? `.${fraction}` : ''}e${exponent < 0 ? '-' : '+'}${exponentText}`;
  }
  if (exponent < 0) {
    return `${sign}0.${'0'.repeat(-exponent - 1)}${digits.replace(/0+$/, '')}`;
  }
  const integerPart = digits.slice(0, exponent + 1);
  const fraction = digits.slice(exponent + 1).replace(/0+$/, '');
  return `${sign}${integerPart}${fraction ? `.${fraction}` : ''}`;
}
