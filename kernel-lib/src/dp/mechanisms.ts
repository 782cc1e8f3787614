/**
 * Exact samplers for the discrete Laplace and discrete Gaussian distributions.
 *
 * Spec: Canonne, Kamath, Steinke, "The Discrete Gaussian for Differential Privacy"
 * (NeurIPS 2020, arXiv:2004.00010), Algorithm 1 (Bernoulli(exp(−γ)) for rational γ),
 * Algorithm 2 (discrete Laplace with scale t/s) and Algorithm 3 (discrete Gaussian by
 * rejection from a discrete Laplace with integer scale ⌊σ⌋+1).
 *
 * Threat model: floating-point noise leaks (Mironov 2012: the low bits of a float Laplace
 * sample reveal the un-noised value; the set of reachable outputs depends on the input).
 * Here every decision in the sampling path is an exact comparison of integers drawn
 * uniformly from the caller's `Rng` — no float, no `Math.random`. Parameters are
 * `Rational`s. Integer arithmetic uses JS numbers only while every intermediate is a safe
 * integer (< 2^53, so still exact) and falls back to bigint otherwise. Floats appear only in
 * the *descriptive* helpers (pmf, tail, variance) used by tests, planner and lift CIs.
 *
 * Timing: the rejection loops run in data-independent but noise-dependent time; the
 * un-noised value never enters a loop (noise is sampled, then added).
 */
import type { Rng } from "../rng.js";
import { invalid } from "../errors.js";
import { type Rational, type RationalLike, ratFrom, rat, ratDiv, ratMul, ratToNumber, isqrt } from "./rational.js";

const SAFE = Number.MAX_SAFE_INTEGER;
const TWO32 = 0x100000000;
const TWO53 = 2 ** 53;

/**
 * Uniform integers from an Rng, drawing bytes in chunks (one `rng.bytes` call per chunk
 * instead of one per draw). Rejection sampling, so no modulo bias.
 */
class UniformSource {
  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;
  constructor(
    private readonly rng: Rng,
    private readonly chunk: number,
  ) {}

  word(): number {
    if (this.pos + 4 > this.buf.length) {
      this.buf = this.rng.bytes(this.chunk);
      this.pos = 0;
    }
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return ((b[p]! << 24) >>> 0) + (b[p + 1]! << 16) + (b[p + 2]! << 8) + b[p + 3]!;
  }

  /** Uniform in [0, n) for a safe integer n ≥ 1. */
  int(n: number): number {
    if (n === 1) return 0;
    if (n <= TWO32) {
      const limit = TWO32 - (TWO32 % n);
      for (;;) {
        const x = this.word();
        if (x < limit) return x % n;
      }
    }
    // 53 uniform bits from two words; `%` on doubles holding safe integers is exact
    const limit = TWO53 - (TWO53 % n);
    for (;;) {
      const x = (this.word() >>> 11) * TWO32 + this.word();
      if (x < limit) return x % n;
    }
  }

  /** Uniform in [0, n) for a bigint n ≥ 1. */
  big(n: bigint): bigint {
    if (n <= BigInt(SAFE)) return BigInt(this.int(Number(n)));
    const bits = (n - 1n).toString(2).length;
    const words = Math.ceil(bits / 32);
    const mask = (1n << BigInt(bits)) - 1n;
    for (;;) {
      let x = 0n;
      for (let i = 0; i < words; i++) x = (x << 32n) | BigInt(this.word());
      x &= mask;
      if (x < n) return x;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Algorithm 1: Bernoulli(exp(−γ)), γ = n/d ≥ 0

/** γ = n/d ∈ [0, 1], safe integers. CKS Alg. 1: K odd with the right probability. */
function bernExpNegUnit(u: UniformSource, n: number, d: number): boolean {
  let k = 1;
  for (;;) {
    const dk = d * k;
    const a = dk <= SAFE ? u.int(dk) < n : u.big(BigInt(d) * BigInt(k)) < BigInt(n);
    if (!a) break;
    k++;
  }
  return (k & 1) === 1;
}

/** Bernoulli(exp(−1)). */
function bernExpNeg1(u: UniformSource): boolean {
  let k = 1;
  while (u.int(k) === 0) k++;
  return (k & 1) === 1;
}

/** γ = n/d ≥ 0, safe integers. */
function bernExpNeg(u: UniformSource, n: number, d: number): boolean {
  if (n <= d) return bernExpNegUnit(u, n, d);
  const r = n % d; // exact for safe integers
  const q = (n - r) / d;
  for (let i = 0; i < q; i++) if (!bernExpNeg1(u)) return false;
  return bernExpNegUnit(u, r, d);
}

/** Bigint version of Algorithm 1 for γ = n/d ≥ 0. */
function bernExpNegBig(u: UniformSource, n: bigint, d: bigint): boolean {
  if (n <= BigInt(SAFE) && d <= BigInt(SAFE)) return bernExpNeg(u, Number(n), Number(d));
  const q = n / d;
  for (let i = 0n; i < q; i++) if (!bernExpNeg1(u)) return false;
  const r = n - q * d;
  let k = 1n;
  while (u.big(d * k) < r) k++;
  return (k & 1n) === 1n;
}

// ---------------------------------------------------------------------------------------
// Algorithm 2: discrete Laplace with scale t/s, P(x) ∝ exp(−|x|·s/t)

function geometricExp1(u: UniformSource): number {
  let v = 0;
  while (bernExpNeg1(u)) v++;
  return v;
}

/** Number path: t ≤ 2^40 and s safe, so U + t·V stays exact. */
function dlapNum(u: UniformSource, t: number, s: number): number {
  for (;;) {
    const U = u.int(t);
    if (!bernExpNegUnit(u, U, t)) continue;
    const V = geometricExp1(u);
    const X = U + t * V;
    const Y = (X - (X % s)) / s;
    const B = u.int(2);
    if (B === 1 && Y === 0) continue;
    return B === 1 ? -Y : Y;
  }
}

function dlapBig(u: UniformSource, t: bigint, s: bigint): bigint {
  for (;;) {
    const U = u.big(t);
    if (!bernExpNegBig(u, U, t)) continue;
    const V = BigInt(geometricExp1(u));
    const Y = (U + t * V) / s;
    const B = u.int(2);
    if (B === 1 && Y === 0n) continue;
    return B === 1 ? -Y : Y;
  }
}

const NUM_T_MAX = 2 ** 40;

function dlap(u: UniformSource, t: bigint, s: bigint): bigint {
  if (t <= BigInt(NUM_T_MAX) && s <= BigInt(SAFE)) return BigInt(dlapNum(u, Number(t), Number(s)));
  return dlapBig(u, t, s);
}

// ---------------------------------------------------------------------------------------
// Algorithm 3: discrete Gaussian, P(x) ∝ exp(−x²/(2σ²)), σ² = a/b

function dgauss(u: UniformSource, a: bigint, b: bigint): bigint {
  const tb = isqrt(a / b) + 1n; // ⌊σ⌋ + 1 (⌊√⌊x⌋⌋ = ⌊√x⌋)
  const numOk = tb <= BigInt(NUM_T_MAX) && a <= BigInt(SAFE) && b <= BigInt(SAFE);
  const an = Number(a);
  const bn = Number(b);
  const tn = Number(tb);
  const denNum = 2 * an * bn * tn * tn; // exact when ≤ 2^53
  const denOk = numOk && denNum <= SAFE;
  for (;;) {
    if (numOk) {
      const y = dlapNum(u, tn, 1);
      const ay = y < 0 ? -y : y;
      // γ = (|Y| − σ²/t)² / (2σ²) = (|Y|·b·t − a)² / (2·a·b·t²)
      const ybt = ay * bn * tn;
      if (denOk && ybt <= SAFE) {
        const x = ybt - an;
        if (x <= 94906265 && x >= -94906265) {
          if (bernExpNeg(u, x * x, denNum)) return BigInt(y);
          continue;
        }
      }
      const x = BigInt(ay) * b * tb - a;
      if (bernExpNegBig(u, x * x, 2n * a * b * tb * tb)) return BigInt(y);
      continue;
    }
    const y = dlapBig(u, tb, 1n);
    const ay = y < 0n ? -y : y;
    const x = ay * b * tb - a;
    if (bernExpNegBig(u, x * x, 2n * a * b * tb * tb)) return y;
  }
}

// ---------------------------------------------------------------------------------------
// Public API

function positive(x: RationalLike, field: string): Rational {
  const r = ratFrom(x, field);
  if (r.num <= 0n) invalid(field, "positive rational", ratToNumber(r), "DP_PARAM_INVALID");
  return r;
}

function checkRng(rng: Rng): void {
  if (!rng || typeof rng.bytes !== "function") invalid("rng", "an Rng (secureRng() or seededRng(seed))", rng, "RNG_INVALID");
}

function checkCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 0 || count > 1e8) invalid("count", "integer in [0, 1e8]", count, "DP_PARAM_INVALID");
}

/**
 * One exact discrete Laplace sample: P(x) ∝ exp(−|x|/scale), x ∈ ℤ (CKS Alg. 2).
 * @example sampleDiscreteLaplace(rat(2), secureRng()) // e.g. -1n
 */
export function sampleDiscreteLaplace(scale: RationalLike, rng: Rng): bigint {
  const r = positive(scale, "scale");
  checkRng(rng);
  return dlap(new UniformSource(rng, 64), r.num, r.den);
}

/**
 * `count` independent discrete Laplace samples (one byte stream, chunked: faster per sample).
 * @example sampleDiscreteLaplaceMany("0.5", 3, seededRng("demo")) // [0n, 2n, -1n] (for example)
 */
export function sampleDiscreteLaplaceMany(scale: RationalLike, count: number, rng: Rng): bigint[] {
  const r = positive(scale, "scale");
  checkRng(rng);
  checkCount(count);
  const u = new UniformSource(rng, 4096);
  const out = new Array<bigint>(count);
  for (let i = 0; i < count; i++) out[i] = dlap(u, r.num, r.den);
  return out;
}

/**
 * One exact discrete Gaussian sample: P(x) ∝ exp(−x²/(2·sigma2)), x ∈ ℤ (CKS Alg. 3).
 * @example sampleDiscreteGaussian(rat(25), secureRng()) // e.g. 4n
 */
export function sampleDiscreteGaussian(sigma2: RationalLike, rng: Rng): bigint {
  const r = positive(sigma2, "sigma2");
  checkRng(rng);
  return dgauss(new UniformSource(rng, 64), r.num, r.den);
}

/**
 * `count` independent discrete Gaussian samples.
 * @example sampleDiscreteGaussianMany(rat(4), 2, seededRng("demo")) // [1n, -3n] (for example)
 */
export function sampleDiscreteGaussianMany(sigma2: RationalLike, count: number, rng: Rng): bigint[] {
  const r = positive(sigma2, "sigma2");
  checkRng(rng);
  checkCount(count);
  const u = new UniformSource(rng, 4096);
  const out = new Array<bigint>(count);
  for (let i = 0; i < count; i++) out[i] = dgauss(u, r.num, r.den);
  return out;
}

/**
 * Exact Bernoulli(exp(−gamma)) for rational gamma ≥ 0 (CKS Alg. 1). Exposed for tests.
 * @example sampleBernoulliExp(rat(1, 2), seededRng("x")) // true with probability e^{-1/2}
 */
export function sampleBernoulliExp(gamma: RationalLike, rng: Rng): boolean {
  const g = ratFrom(gamma, "gamma");
  if (g.num < 0n) invalid("gamma", "non-negative rational", ratToNumber(g), "DP_PARAM_INVALID");
  checkRng(rng);
  return bernExpNegBig(new UniformSource(rng, 64), g.num, g.den);
}

function sensitivityOf(s: bigint | number, field: string): bigint {
  const b = typeof s === "number" && Number.isSafeInteger(s) ? BigInt(s) : s;
  if (typeof b !== "bigint" || b <= 0n) return invalid(field, "positive integer", s, "DP_PARAM_INVALID");
  return b;
}

/**
 * Discrete Laplace scale giving ε-DP for an integer query of L1 sensitivity Δ: scale = Δ/ε.
 * @example laplaceScaleFor(rat(1, 2), 1n) // 2 (as Rational)
 */
export function laplaceScaleFor(epsilon: RationalLike, sensitivity: bigint | number): Rational {
  return ratDiv(rat(sensitivityOf(sensitivity, "sensitivity")), positive(epsilon, "epsilon"));
}

/**
 * ε spent by discrete Laplace noise of `scale` on a query of L1 sensitivity Δ: ε = Δ/scale.
 * @example laplaceEpsilonFor(rat(2), 1n) // 1/2
 */
export function laplaceEpsilonFor(scale: RationalLike, sensitivity: bigint | number): Rational {
  return ratDiv(rat(sensitivityOf(sensitivity, "sensitivity")), positive(scale, "scale"));
}

/**
 * Discrete Gaussian variance parameter giving ρ-zCDP for squared L2 sensitivity Δ₂²:
 * σ² = Δ₂²/(2ρ) (CKS Thm. 4).
 * @example gaussianSigma2For("0.5", 1n) // 1
 */
export function gaussianSigma2For(rho: RationalLike, l2Squared: bigint | number): Rational {
  return ratDiv(rat(sensitivityOf(l2Squared, "l2Squared")), ratMul(rat(2), positive(rho, "rho")));
}

/**
 * ρ spent by discrete Gaussian noise σ² on a query of squared L2 sensitivity Δ₂²: ρ = Δ₂²/(2σ²).
 * @example gaussianRhoFor(rat(1), 1n) // 1/2
 */
export function gaussianRhoFor(sigma2: RationalLike, l2Squared: bigint | number): Rational {
  return ratDiv(rat(sensitivityOf(l2Squared, "l2Squared")), ratMul(rat(2), positive(sigma2, "sigma2")));
}

// ---------------------------------------------------------------------------------------
// Descriptive helpers (floating point; for tests, planning and confidence intervals only)

/**
 * Variance of the discrete Laplace with `scale` t: 2p/(1−p)², p = e^{−1/t}.
 * @example discreteLaplaceVariance(rat(1)) // ≈ 1.8410
 */
export function discreteLaplaceVariance(scale: RationalLike): number {
  const t = ratToNumber(positive(scale, "scale"));
  const p = Math.exp(-1 / t);
  const q = -Math.expm1(-1 / t);
  return (2 * p) / (q * q);
}

function gaussRange(s2: number): number {
  return Math.ceil(12 * Math.sqrt(s2)) + 2;
}

let zMemo: [number, number] = [NaN, NaN];
/** Normalising constant Σ_x exp(−x²/(2σ²)) for σ² as a double (memoised for the last σ²). */
function gaussZ(s2: number): number {
  if (zMemo[0] === s2) return zMemo[1];
  const m = gaussRange(s2);
  let z = 1;
  for (let x = m; x >= 1; x--) z += 2 * Math.exp(-(x * x) / (2 * s2));
  zMemo = [s2, z];
  return z;
}

/**
 * Variance of the discrete Gaussian with parameter σ²: < σ², and equal to it within
 * 1e-60 relative for σ² ≥ 4 (CKS Prop. 19/Cor. 9); computed by summation below that.
 * @example discreteGaussianVariance(rat(1, 4)) // ≈ 0.0366
 */
export function discreteGaussianVariance(sigma2: RationalLike): number {
  const s2 = ratToNumber(positive(sigma2, "sigma2"));
  if (s2 >= 1e4) return s2;
  const m = gaussRange(s2);
  let num = 0;
  for (let x = m; x >= 1; x--) num += 2 * x * x * Math.exp(-(x * x) / (2 * s2));
  return num / gaussZ(s2);
}

/**
 * P(X = x) for the discrete Laplace with `scale` t: tanh(1/(2t))·e^{−|x|/t}.
 * @example discreteLaplacePmf(0, rat(1)) // ≈ 0.4621
 */
export function discreteLaplacePmf(x: number, scale: RationalLike): number {
  const t = ratToNumber(positive(scale, "scale"));
  return Math.tanh(1 / (2 * t)) * Math.exp(-Math.abs(x) / t);
}

/**
 * P(X = x) for the discrete Gaussian with parameter σ².
 * @example discreteGaussianPmf(0, rat(1)) // ≈ 0.3989
 */
export function discreteGaussianPmf(x: number, sigma2: RationalLike): number {
  const s2 = ratToNumber(positive(sigma2, "sigma2"));
  return Math.exp(-(x * x) / (2 * s2)) / gaussZ(s2);
}

/**
 * Exact two-sided tail P(|X| > k) of the discrete Laplace: 2·p^{k+1}/(1+p), p = e^{−1/t}.
 * @example discreteLaplaceTail(3, rat(1)) // ≈ 0.0269
 */
export function discreteLaplaceTail(k: number, scale: RationalLike): number {
  if (!Number.isSafeInteger(k) || k < 0) invalid("k", "non-negative integer", k, "DP_PARAM_INVALID");
  const t = ratToNumber(positive(scale, "scale"));
  return (2 * Math.exp(-(k + 1) / t)) / (1 + Math.exp(-1 / t));
}

/**
 * Two-sided tail P(|X| > k) of the discrete Gaussian, by summing the pmf.
 * @example discreteGaussianTail(2, rat(1)) // ≈ 0.0122
 */
export function discreteGaussianTail(k: number, sigma2: RationalLike): number {
  if (!Number.isSafeInteger(k) || k < 0) invalid("k", "non-negative integer", k, "DP_PARAM_INVALID");
  const s2 = ratToNumber(positive(sigma2, "sigma2"));
  const m = Math.max(gaussRange(s2), k + 2);
  let tail = 0;
  for (let x = m; x > k; x--) tail += 2 * Math.exp(-(x * x) / (2 * s2));
  return tail / gaussZ(s2);
}
