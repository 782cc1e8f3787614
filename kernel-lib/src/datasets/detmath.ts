/**
 * Deterministic sampling primitives for the synthetic-data generators.
 *
 * What it does: turns an `Rng` byte stream (rng.ts; a ChaCha20 keystream when seeded) into
 * uniform doubles, Bernoulli draws, categorical picks, normal, lognormal, Pareto and
 * geometric variates.
 *
 * Why not `Math.log`/`Math.exp`: ECMAScript leaves transcendental functions
 * implementation-approximated, so a 1-ulp difference between engines (or Node versions)
 * could move a rounded cent and break "same seed → byte-identical files". Everything here
 * uses only +, −, ×, ÷ and `Math.sqrt`, which IEEE 754 requires to be correctly rounded,
 * so a given seed yields the same bits on every conforming platform.
 *
 * Threat model: none — these are for synthetic data only, never for DP noise (dp/ owns
 * that, with exact integer samplers).
 */
import type { Rng } from "../rng.js";

const LN2 = 0.6931471805599453;
const TWO_POW_53 = 9007199254740992;

/** Natural logarithm from basic arithmetic only (relative error ~1e-16). `x` must be > 0. */
export function detLog(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) return x === 0 ? -Infinity : NaN;
  let m = x;
  let e = 0;
  while (m >= 2) {
    m /= 2;
    e++;
  }
  while (m < 1) {
    m *= 2;
    e--;
  }
  if (m > Math.SQRT2) {
    m /= 2;
    e++;
  }
  // log m = 2 atanh(t), t = (m-1)/(m+1), |t| <= 0.1716: 13 odd terms reach 1e-17
  const t = (m - 1) / (m + 1);
  const t2 = t * t;
  let s = 1 / 25;
  for (let k = 23; k >= 1; k -= 2) s = 1 / k + t2 * s;
  return e * LN2 + 2 * t * s;
}

/** Exponential from basic arithmetic only. Saturates to 0 / Infinity outside ±700. */
export function detExp(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x > 700) return Infinity;
  if (x < -700) return 0;
  const k = Math.round(x / LN2);
  const r = x - k * LN2; // |r| <= 0.35
  let s = 1;
  for (let n = 20; n >= 1; n--) s = 1 + (r / n) * s;
  let p = 1;
  const base = k >= 0 ? 2 : 0.5;
  for (let i = Math.abs(k); i > 0; i--) p *= base;
  return s * p;
}

/**
 * Buffered uniform source over an `Rng`: pulls 64 KiB blocks of bytes and reads 32-bit
 * words from them, so a 10M-row generation makes ~10⁴ Rng calls instead of ~10⁸.
 *
 * @example
 * const u = new UniformSource(seededRng("demo")); u.next() // same double every run
 */
export class UniformSource {
  private buf: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.buf.buffer);
  private pos = 0;
  private spare: number | null = null;

  constructor(
    private readonly rng: Rng,
    private readonly blockBytes = 65536,
  ) {}

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    if (this.pos + 4 > this.buf.length) {
      this.buf = this.rng.bytes(this.blockBytes);
      this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
      this.pos = 0;
    }
    const x = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return x;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  next(): number {
    const a = this.u32() >>> 5;
    const b = this.u32() >>> 6;
    return (a * 67108864 + b) / TWO_POW_53;
  }

  /** Uniform double in (0, 1]. */
  open(): number {
    return 1 - this.next();
  }

  /** Uniform integer in [0, n) (bias ≤ n / 2⁵³, irrelevant for synthetic data). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  bernoulli(p: number): boolean {
    return this.next() < p;
  }

  /** Index drawn from cumulative weights `cum` (last entry = total). */
  pick(cum: readonly number[]): number {
    const x = this.next() * cum[cum.length - 1]!;
    for (let i = 0; i < cum.length - 1; i++) if (x < cum[i]!) return i;
    return cum.length - 1;
  }

  /** Standard normal (Marsaglia polar method; caches the second variate). */
  normal(): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    for (;;) {
      const v1 = 2 * this.next() - 1;
      const v2 = 2 * this.next() - 1;
      const s = v1 * v1 + v2 * v2;
      if (s > 0 && s < 1) {
        const f = Math.sqrt((-2 * detLog(s)) / s);
        this.spare = v2 * f;
        return v1 * f;
      }
    }
  }

  /** exp(N(mu, sigma²)). */
  lognormal(mu: number, sigma: number): number {
    return detExp(mu + sigma * this.normal());
  }

  /** Pareto type I with scale `xm` and shape `alpha` (inverse CDF). */
  pareto(xm: number, alpha: number): number {
    return xm * detExp(-detLog(this.open()) / alpha);
  }

  /** Number of failures before the first "stop" when each trial continues with prob `q`, capped. */
  geometric(q: number, cap: number): number {
    let k = 0;
    while (k < cap && this.next() < q) k++;
    return k;
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }
}

/** Cumulative sums of `weights`. */
export function cumulative(weights: readonly number[]): number[] {
  let s = 0;
  return weights.map((w) => (s += w));
}
