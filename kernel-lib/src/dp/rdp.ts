/**
 * Rényi-DP accountant for the Poisson-subsampled Gaussian mechanism (DP-SGD), and its
 * conversion to (ε, δ)-DP.
 *
 * Spec: Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian
 * Mechanism" (arXiv:1908.10530), §3.3: for sampling rate q and noise multiplier σ (noise
 * std / L2 sensitivity), add/remove-one adjacency, the RDP of order α is log(A_α)/(α − 1) with
 *   integer α:    A_α = Σ_k C(α,k) (1−q)^{α−k} q^k exp((k² − k)/(2σ²))
 *   fractional α: the two-sided series with erfc terms (their eq. for A_α, split at z₀).
 * This is the computation of TensorFlow Privacy's `compute_rdp`, Opacus' `RDPAccountant`
 * and Google's `dp_accounting` (`_compute_log_a_int` / `_compute_log_a_frac`), done in log
 * space. RDP composes additively over steps.
 *
 * Conversions RDP(α, r) → (ε, δ), minimised over the orders:
 *   "classic": ε = r + ln(1/δ)/(α − 1)                      (Mironov 2017, Prop. 3)
 *   "improved": ε = r + ln((α−1)/α) − (ln δ + ln α)/(α − 1)  (Balle et al. 2020, Thm 21;
 *               Canonne–Kamath–Steinke 2020, Prop. 12) — what Opacus ≥ 1.0 and dp_accounting use.
 * Both are valid; "improved" is never larger and is the default.
 *
 * Threat model: the result is a privacy cost; it must never be UNDER-estimated. Floats are used
 * (ln, erfc); the float ε is rounded UP onto the accountant's grid with a relative margin far
 * above the float error (see `upperRational` in accountant.ts). A result that is not finite
 * (e.g. σ so small that every order overflows) is refused, never reported as "0".
 */
import { invalid } from "../errors.js";
import { type AccountantKind, type PrivacyCost, checkParam, upperRational } from "./accountant.js";
import { rat, ratAdd, ratDiv, ratFrom, ratMul, ratToNumber, ZERO } from "./rational.js";

/** The default RDP orders (those of Opacus' RDPAccountant and TF Privacy's tutorials). */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10),
  ...Array.from({ length: 52 }, (_, x) => 12 + x),
]);

export type RdpConversion = "improved" | "classic";

function logAdd(a: number, b: number): number {
  const hi = Math.max(a, b);
  const lo = Math.min(a, b);
  if (lo === -Infinity) return hi;
  return hi + Math.log1p(Math.exp(lo - hi));
}

/** log(exp(a) − exp(b)) for a ≥ b. */
function logSub(a: number, b: number): number {
  if (b === -Infinity) return a;
  if (a < b) invalid("rdp", "a non-negative series term", "a negative one", "INTERNAL");
  if (a === b) return -Infinity;
  return a + Math.log(-Math.expm1(b - a));
}

/** ln Γ(1/2) = ln √π. */
const LN_SQRT_PI = 0.5 * Math.log(Math.PI);

/**
 * ln erfc(x) to ~1e-14 relative accuracy for every finite x, with no underflow for large x
 * (erfc(x) = Q(1/2, x²), the regularised upper incomplete gamma; series for small x², Lentz's
 * continued fraction for large — Numerical Recipes §6.2).
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) invalid("x", "a number", x, "INTERNAL");
  if (x < 0) return Math.log(2 - Math.exp(logErfc(-x)));
  if (x === 0) return 0;
  const a = 0.5;
  const z = x * x;
  if (z < a + 1) {
    // P(a, z) by series; erfc = 1 − P
    let sum = 1 / a;
    let del = sum;
    let ap = a;
    for (let n = 0; n < 500; n++) {
      ap += 1;
      del *= z / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * 1e-17) break;
    }
    const p = sum * Math.exp(-z + a * Math.log(z) - LN_SQRT_PI);
    return Math.log1p(-p);
  }
  // Q(a, z) by continued fraction (modified Lentz)
  const tiny = 1e-300;
  let b = z + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return -z + a * Math.log(z) - LN_SQRT_PI + Math.log(h);
}

/** log A_α for integer α (binomial expansion, log space). */
function logAInt(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  let logBinom = 0; // ln C(α, 0)
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  for (let k = 0; k <= alpha; k++) {
    if (k > 0) logBinom += Math.log((alpha - k + 1) / k);
    const s = logBinom + k * lq + (alpha - k) * l1q + (k * k - k) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

/** log A_α for fractional α (Mironov–Talwar–Zhang §3.3; the two series split at z₀). */
function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  let coef = 1; // C(α, i), real α; sign alternates once i > α
  let logAbsCoef = 0;
  for (let i = 0; i < 100_000; i++) {
    if (i > 0) {
      const f = (alpha - i + 1) / i;
      coef *= Math.sign(f);
      logAbsCoef += Math.log(Math.abs(f));
    }
    const j = alpha - i;
    const logT0 = logAbsCoef + i * lq + j * l1q;
    const logT1 = logAbsCoef + j * lq + i * l1q;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (coef > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

function checkQSigma(q: number, sigma: number): void {
  if (typeof q !== "number" || !Number.isFinite(q) || q <= 0 || q > 1) invalid("sampleRate", "a number in (0, 1]", q, "DP_PARAM_INVALID");
  if (typeof sigma !== "number" || !Number.isFinite(sigma) || sigma < 0.1 || sigma > 1e4)
    invalid("noiseMultiplier", "a number in [0.1, 1e4]", sigma, "DP_PARAM_INVALID");
}

/**
 * RDP of ONE step of the Poisson-subsampled Gaussian at order α (> 1).
 * q = 1 is the plain Gaussian mechanism: α/(2σ²).
 * @example rdpStep(0.01, 1.0, 5) // ≈ 0.00249 (one step; × steps for a run)
 */
export function rdpStep(q: number, sigma: number, alpha: number): number {
  checkQSigma(q, sigma);
  if (!Number.isFinite(alpha) || alpha <= 1 || alpha > 1e4) invalid("orders", "numbers in (1, 1e4]", alpha, "DP_PARAM_INVALID");
  if (q === 1) return alpha / (2 * sigma * sigma);
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  return logA / (alpha - 1);
}

/**
 * RDP after `steps` steps at each order (additive composition).
 * @example computeRdp(256 / 60000, 1.1, 14063, [2, 4, 8])
 */
export function computeRdp(q: number, sigma: number, steps: number, orders: readonly number[] = DEFAULT_ORDERS): number[] {
  if (!Number.isSafeInteger(steps) || steps < 1 || steps > 1e9) invalid("steps", "an integer in [1, 1e9]", steps, "DP_PARAM_INVALID");
  if (!Array.isArray(orders) || orders.length === 0 || orders.length > 1000)
    invalid("orders", "a non-empty array of at most 1000 orders", orders, "DP_PARAM_INVALID");
  return orders.map((a) => rdpStep(q, sigma, a) * steps);
}

/** The (ε, δ) of an RDP curve, with the order that attains it. */
export interface RdpEpsilon {
  epsilon: number;
  order: number;
  conversion: RdpConversion;
}

/**
 * Convert an RDP curve to (ε, δ)-DP, minimising over orders (see the header for both formulas).
 * @example rdpToEpsilon([2, 5], [0.1, 0.5], 1e-5) // { epsilon, order, conversion: "improved" }
 */
export function rdpToEpsilon(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number,
  conversion: RdpConversion = "improved",
): RdpEpsilon {
  if (!Number.isFinite(delta) || delta <= 0 || delta >= 1) invalid("delta", "a number in (0, 1)", delta, "DP_PARAM_INVALID");
  if (orders.length !== rdp.length) invalid("rdp", `${orders.length} values (one per order)`, rdp.length, "DP_PARAM_INVALID");
  let best: RdpEpsilon = { epsilon: Infinity, order: NaN, conversion };
  const ld = Math.log(delta);
  orders.forEach((a, i) => {
    const r = rdp[i]!;
    if (!Number.isFinite(r)) return;
    const eps = conversion === "classic" ? r - ld / (a - 1) : r - (ld + Math.log(a)) / (a - 1) + Math.log((a - 1) / a);
    if (eps < best.epsilon) best = { epsilon: Math.max(0, eps), order: a, conversion };
  });
  if (!Number.isFinite(best.epsilon))
    invalid("noiseMultiplier", "a noise level whose RDP is finite at some order", "overflow at every order", "DP_PARAM_INVALID");
  return best;
}

/**
 * ε of DP-SGD with Poisson sampling rate q, noise multiplier σ, `steps` steps, at δ.
 * @example dpSgdEpsilon({ sampleRate: 0.01, noiseMultiplier: 1, steps: 300, delta: 1e-5, orders: [2, 5, 10, 20, 100] })
 */
export function dpSgdEpsilon(p: {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
  orders?: readonly number[];
  conversion?: RdpConversion;
}): RdpEpsilon {
  const orders = p.orders ?? DEFAULT_ORDERS;
  return rdpToEpsilon(orders, computeRdp(p.sampleRate, p.noiseMultiplier, p.steps, orders), p.delta, p.conversion ?? "improved");
}

/**
 * The smallest noise multiplier (to 1e-3 relative) whose ε after `steps` is ≤ `epsilon` (bisection;
 * ε is decreasing in σ). Refuses when even σ = 1e4 does not reach it.
 * @example noiseForEpsilon({ sampleRate: 0.01, steps: 1000, delta: 1e-5, epsilon: 1 }) // ≈ 1.2
 */
export function noiseForEpsilon(p: {
  sampleRate: number;
  steps: number;
  delta: number;
  epsilon: number;
  conversion?: RdpConversion;
}): number {
  if (!Number.isFinite(p.epsilon) || p.epsilon <= 0 || p.epsilon > 1e4)
    invalid("epsilon", "a number in (0, 1e4]", p.epsilon, "DP_PARAM_INVALID");
  const eps = (s: number) => dpSgdEpsilon({ ...p, noiseMultiplier: s }).epsilon;
  let lo = 0.1;
  let hi = 1;
  while (eps(hi) > p.epsilon) {
    lo = hi;
    hi *= 2;
    if (hi > 1e4) invalid("epsilon", "an ε reachable with noise multiplier ≤ 1e4", p.epsilon, "DP_PARAM_INVALID");
  }
  if (eps(lo) <= p.epsilon) return lo;
  while (hi - lo > 1e-3 * hi) {
    const mid = (lo + hi) / 2;
    if (eps(mid) > p.epsilon) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** One composed part of a run: `steps` Poisson-subsampled Gaussian steps (q = 1: plain Gaussian). */
export interface SgmPart {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
}

/** RDP of several parts composed (additive), at each order. @example composedRdp([{ sampleRate: 0.01, noiseMultiplier: 1, steps: 100 }]) */
export function composedRdp(parts: readonly SgmPart[], orders: readonly number[] = DEFAULT_ORDERS): number[] {
  if (!Array.isArray(parts) || parts.length === 0)
    invalid("parts", "a non-empty list of { sampleRate, noiseMultiplier, steps }", parts, "DP_PARAM_INVALID");
  const out = orders.map(() => 0);
  for (const p of parts) computeRdp(p.sampleRate, p.noiseMultiplier, p.steps, orders).forEach((r, i) => (out[i]! += r));
  return out;
}

/**
 * The ledger charge of a composed run, in the units of the room's accountant — how DP-SGD is
 * charged "in the same units as queries":
 *
 *  - approxDp budget (ε, δ): the RDP curve converted with the improved conversion at the
 *    budget's δ (`delta`), ε rounded UP on the accountant's grid; δ charged exactly as given.
 *  - zCdp budget (ρ): ρ = Σ steps / (2σ²), EXACT over rationals (σ as typed). Why it is valid:
 *    one step releases Σ_{i∈batch} clip(g_i) + N(0, σ²C²); for each fixed outcome of the
 *    sampling, neighbouring datasets give sums at L2 distance ≤ C, a Gaussian mechanism that is
 *    1/(2σ²)-zCDP; the released distribution is a mixture over samplings with the same weights
 *    on both sides, and Rényi divergence is jointly quasi-convex (van Erven–Harremoës 2014,
 *    Thm 13), so every order α is bounded by α/(2σ²): the step is 1/(2σ²)-zCDP, and zCDP
 *    composes adaptively (Bun–Steinke 2016, Lemma 2.3). It forgoes amplification by sampling
 *    (subsampled Gaussian RDP is not bounded by ρα at every order), so it is conservative —
 *    often by a factor of 1/q — never under-counting.
 *  - pureDp budget: refused (Gaussian noise gives no pure ε-DP guarantee).
 *
 * @example sgmCost("approxDp", [{ sampleRate: 0.01, noiseMultiplier: 1, steps: 300 }], "1e-5") // ε ≈ 2.19 (all default orders)
 */
export function sgmCost(accountant: AccountantKind, parts: readonly SgmPart[], delta?: string | number): PrivacyCost {
  if (accountant === "pureDp")
    return invalid(
      "budget",
      "an (epsilon, delta) or rho budget (open the lab with budget { epsilon, delta } or { rho }): Gaussian noise is not pure ε-DP",
      "a pure ε budget",
      "DP_PARAM_INVALID",
    );
  if (accountant === "zCdp") {
    let rho = ZERO;
    for (const p of parts) {
      computeRdp(p.sampleRate, p.noiseMultiplier, p.steps, [2]); // validates the part
      const s = ratFrom(p.noiseMultiplier, "noiseMultiplier");
      rho = ratAdd(rho, ratDiv(rat(BigInt(p.steps)), ratMul(rat(2n), ratMul(s, s))));
    }
    return { kind: "zCdp", rho: checkParam(rho, "rho") };
  }
  if (delta === undefined) return invalid("delta", "the budget's delta", delta, "DP_PARAM_INVALID");
  const d = checkParam(String(delta), "delta", true);
  const eps = rdpToEpsilon(DEFAULT_ORDERS, composedRdp(parts), ratToNumber(d), "improved").epsilon;
  return { kind: "approxDp", epsilon: checkParam(upperRational(eps, "epsilon"), "epsilon"), delta: d };
}
