/**
 * Exact rational arithmetic over bigint, for privacy parameters and budgets.
 *
 * Why: a budget of 1.0 spent in ten charges of 0.1 must be exhausted exactly — in binary
 * floating point 0.1 × 10 ≠ 1.0, so a float ledger either refuses the tenth query or lets an
 * eleventh one through. Every ε, δ, ρ, noise scale and grid step in the dp layer is a
 * `Rational { num, den }` in lowest terms with `den > 0`. Decimal inputs ("0.1", 0.1, "1e-6")
 * are parsed from their shortest decimal spelling, which is what the analyst typed.
 *
 * Threat model: none of this is secret; the point is that no rounding ever favours the
 * analyst. Where an irrational quantity (√, ln, exp) must be stored as a rational, callers
 * use `ratCeilTo` / `ratFloorTo` to round it against the analyst on a stated grid.
 */
import { invalid } from "../errors.js";

/** A rational number `num / den` in lowest terms, `den > 0`. */
export interface Rational {
  readonly num: bigint;
  readonly den: bigint;
}

/** Anything the dp layer accepts where a rational is expected. */
export type RationalLike = Rational | bigint | number | string;

/** JSON form of a rational (bigint is not JSON-able). */
export interface RationalJson {
  num: string;
  den: string;
}

const abs = (x: bigint) => (x < 0n ? -x : x);

/** Greatest common divisor of two bigints (non-negative result). @example gcd(12n, -18n) // 6n */
export function gcd(a: bigint, b: bigint): bigint {
  a = abs(a);
  b = abs(b);
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function norm(num: bigint, den: bigint): Rational {
  if (den === 0n) invalid("den", "non-zero denominator", den, "DP_PARAM_INVALID");
  if (den < 0n) {
    num = -num;
    den = -den;
  }
  const g = gcd(num, den);
  return g > 1n ? { num: num / g, den: den / g } : { num, den };
}

function toBig(x: bigint | number, field: string): bigint {
  if (typeof x === "bigint") return x;
  if (typeof x === "number" && Number.isSafeInteger(x)) return BigInt(x);
  return invalid(field, "integer (bigint or safe integer number)", x, "DP_PARAM_INVALID");
}

/**
 * Build a rational from integers.
 * @example rat(1, 10) // { num: 1n, den: 10n }
 */
export function rat(num: bigint | number, den: bigint | number = 1n): Rational {
  return norm(toBig(num, "num"), toBig(den, "den"));
}

const DECIMAL = /^([+-]?)(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$|^([+-]?)\.(\d+)(?:[eE]([+-]?\d+))?$/;

/**
 * Parse a decimal string (or a finite JS number, via its shortest decimal spelling) exactly.
 * Also accepts "a/b" fractions.
 * @example ratFromDecimal("0.1") // { num: 1n, den: 10n }; ratFromDecimal(1e-6) // 1/1000000
 */
export function ratFromDecimal(s: string | number, field = "value"): Rational {
  if (typeof s === "number") {
    if (!Number.isFinite(s)) return invalid(field, "finite number", s, "DP_PARAM_INVALID");
    s = String(s);
  }
  if (typeof s !== "string") return invalid(field, "decimal string", s, "DP_PARAM_INVALID");
  const t = s.trim();
  const frac = /^([+-]?\d+)\s*\/\s*(\d+)$/.exec(t);
  if (frac) {
    if (BigInt(frac[2]!) === 0n) return invalid(field, "fraction with non-zero denominator", s, "DP_PARAM_INVALID");
    return norm(BigInt(frac[1]!), BigInt(frac[2]!));
  }
  const m = DECIMAL.exec(t);
  if (!m || t.length > 400) return invalid(field, `decimal string like "0.1" or "1e-6"`, s, "DP_PARAM_INVALID");
  const sign = (m[1] ?? m[5]) === "-" ? -1n : 1n;
  const intPart = m[2] ?? "0";
  const fracPart = m[3] ?? m[6] ?? "";
  const exp = Number(m[4] ?? m[7] ?? "0");
  if (!Number.isSafeInteger(exp) || Math.abs(exp) > 1000) return invalid(field, "exponent within ±1000", s, "DP_PARAM_INVALID");
  let num = BigInt(intPart + fracPart) * sign;
  let den = 10n ** BigInt(fracPart.length);
  if (exp >= 0) num *= 10n ** BigInt(exp);
  else den *= 10n ** BigInt(-exp);
  return norm(num, den);
}

/** True for a structurally valid `Rational` object. @example isRational(rat(1, 2)) // true */
export function isRational(x: unknown): x is Rational {
  return (
    typeof x === "object" &&
    x !== null &&
    typeof (x as Rational).num === "bigint" &&
    typeof (x as Rational).den === "bigint" &&
    (x as Rational).den !== 0n
  );
}

/**
 * Coerce a `RationalLike` (Rational, bigint, integer/decimal number, decimal string, or the JSON
 * form `{num: "1", den: "10"}`) to a normalised Rational; refuses NaN/∞ naming `field`.
 * @example ratFrom("0.25", "epsilon") // 1/4
 */
export function ratFrom(x: RationalLike | RationalJson, field = "value"): Rational {
  if (typeof x === "bigint") return { num: x, den: 1n };
  if (typeof x === "number" || typeof x === "string") return ratFromDecimal(x, field);
  if (isRational(x)) return norm(x.num, x.den);
  if (typeof x === "object" && x !== null && typeof (x as RationalJson).num === "string" && typeof (x as RationalJson).den === "string") {
    const j = x as RationalJson;
    if (!/^-?\d+$/.test(j.num) || !/^\d+$/.test(j.den) || BigInt(j.den) === 0n)
      return invalid(field, "rational {num, den} of integer strings", x, "DP_PARAM_INVALID");
    return norm(BigInt(j.num), BigInt(j.den));
  }
  return invalid(field, "rational, decimal string or finite number", x, "DP_PARAM_INVALID");
}

/** a + b. @example ratAdd(rat(1, 10), rat(2, 10)) // 3/10 */
export const ratAdd = (a: Rational, b: Rational): Rational => norm(a.num * b.den + b.num * a.den, a.den * b.den);
/** a − b. @example ratSub(rat(1), rat(1, 10)) // 9/10 */
export const ratSub = (a: Rational, b: Rational): Rational => norm(a.num * b.den - b.num * a.den, a.den * b.den);
/** a × b. @example ratMul(rat(1, 2), rat(2, 3)) // 1/3 */
export const ratMul = (a: Rational, b: Rational): Rational => norm(a.num * b.num, a.den * b.den);
/** a ÷ b (b ≠ 0). @example ratDiv(rat(1), rat(1, 10)) // 10 */
export function ratDiv(a: Rational, b: Rational): Rational {
  if (b.num === 0n) invalid("divisor", "non-zero rational", 0, "DP_PARAM_INVALID");
  return norm(a.num * b.den, a.den * b.num);
}
/** −1, 0 or 1 as a <, =, > b. @example ratCompare(rat(1, 3), rat(1, 2)) // -1 */
export function ratCompare(a: Rational, b: Rational): -1 | 0 | 1 {
  const d = a.num * b.den - b.num * a.den;
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}
/** a = b. @example ratEq(rat(2, 4), rat(1, 2)) // true */
export const ratEq = (a: Rational, b: Rational): boolean => ratCompare(a, b) === 0;
/** The smaller of a, b. @example ratMin(rat(1, 3), rat(1, 2)) // 1/3 */
export const ratMin = (a: Rational, b: Rational): Rational => (ratCompare(a, b) <= 0 ? a : b);
/** The larger of a, b. @example ratMax(rat(1, 3), rat(1, 2)) // 1/2 */
export const ratMax = (a: Rational, b: Rational): Rational => (ratCompare(a, b) >= 0 ? a : b);
/** Sum of a list (0 for an empty list). @example ratSum([rat(1,10), rat(2,10)]) // 3/10 */
export const ratSum = (xs: readonly Rational[]): Rational => xs.reduce(ratAdd, ZERO);
/** The rational 0. */
export const ZERO: Rational = Object.freeze({ num: 0n, den: 1n });
/** The rational 1. */
export const ONE: Rational = Object.freeze({ num: 1n, den: 1n });

/** ⌊a⌋ as bigint. @example ratFloor(rat(-3, 2)) // -2n */
export function ratFloor(a: Rational): bigint {
  const q = a.num / a.den;
  return a.num < 0n && q * a.den !== a.num ? q - 1n : q;
}
/** ⌈a⌉ as bigint. @example ratCeil(rat(3, 2)) // 2n */
export const ratCeil = (a: Rational): bigint => -ratFloor({ num: -a.num, den: a.den });

/** Smallest multiple of 1/`den` that is ≥ a (round against the analyst for costs). @example ratCeilTo(rat(1, 3), 100n) // 17/50 */
export const ratCeilTo = (a: Rational, den: bigint): Rational => norm(ratCeil(ratMul(a, { num: den, den: 1n })), den);
/** Largest multiple of 1/`den` that is ≤ a (round against the analyst for what remains). @example ratFloorTo(rat(2, 3), 10n) // 3/5 */
export const ratFloorTo = (a: Rational, den: bigint): Rational => norm(ratFloor(ratMul(a, { num: den, den: 1n })), den);

/**
 * Nearest double (for display and statistics only — never for accounting decisions).
 * Exact for small num/den; for huge ones scales both to ≤ 2^1000 first.
 * @example ratToNumber(rat(1, 10)) // 0.1
 */
export function ratToNumber(a: Rational): number {
  let { num, den } = a;
  const shift = BigInt(Math.max(0, Math.max(abs(num).toString(2).length, den.toString(2).length) - 1000));
  if (shift > 0n) {
    num >>= shift;
    den >>= shift;
    if (den === 0n) return num < 0n ? -Infinity : Infinity;
  }
  return Number(num) / Number(den);
}

/**
 * The upper rational neighbour of a double: the exact binary value of `x`, which is what a
 * float computation produced. Combine with a relative margin to bound irrational quantities.
 * @example ratFromFloatExact(0.5) // 1/2
 */
export function ratFromFloatExact(x: number, field = "value"): Rational {
  if (!Number.isFinite(x)) return invalid(field, "finite number", x, "DP_PARAM_INVALID");
  if (x === 0) return ZERO;
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x);
  const hi = buf.getUint32(0);
  const lo = buf.getUint32(4);
  const sign = hi >>> 31 ? -1n : 1n;
  const e = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp: number;
  if (e === 0) exp = -1074;
  else {
    mant |= 1n << 52n;
    exp = e - 1075;
  }
  return exp >= 0 ? norm(sign * (mant << BigInt(exp)), 1n) : norm(sign * mant, 1n << BigInt(-exp));
}

/** Decimal text with up to `digits` fractional digits, rounded half-up (display only). @example ratToDecimal(rat(1, 3), 4) // "0.3333" */
export function ratToDecimal(a: Rational, digits = 6): string {
  const scale = 10n ** BigInt(digits);
  const neg = a.num < 0n;
  const x = (abs(a.num) * scale * 2n + a.den) / (2n * a.den);
  const ip = x / scale;
  const fp = (x % scale).toString().padStart(digits, "0").replace(/0+$/, "");
  const s = fp ? `${ip}.${fp}` : `${ip}`;
  return neg && x !== 0n ? `-${s}` : s;
}

/** Exact text "num/den" (or "num" when den = 1). @example ratToString(rat(3, 10)) // "3/10" */
export const ratToString = (a: Rational): string => (a.den === 1n ? `${a.num}` : `${a.num}/${a.den}`);
/** JSON form `{num, den}` as strings. @example ratToJson(rat(1, 10)) // { num: "1", den: "10" } */
export const ratToJson = (a: Rational): RationalJson => ({ num: a.num.toString(), den: a.den.toString() });

/** ⌊√n⌋ for n ≥ 0 (Newton on bigint). @example isqrt(10n) // 3n */
export function isqrt(n: bigint): bigint {
  if (n < 0n) invalid("n", "non-negative bigint", n, "DP_PARAM_INVALID");
  if (n < 2n) return n;
  // Newton from above: start at a power of two ≥ √n, the iterates decrease to ⌊√n⌋
  let x = 1n << BigInt(Math.ceil(n.toString(2).length / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}
