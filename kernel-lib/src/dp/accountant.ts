/**
 * Privacy costs and their composition: pure ε-DP, approximate (ε, δ)-DP and ρ-zCDP.
 *
 * Threat model: the accountant is the analyst's adversary's bookkeeper. It must never
 * under-count. Every parameter is validated (zero, negative, NaN, ±∞ and absurdly tiny or
 * huge values are refused with `DP_PARAM_INVALID` naming the field); arithmetic is exact
 * over bigint rationals; where a formula is irrational (√, ln, exp: advanced composition,
 * zCDP→(ε, δ)) the float result is inflated by `FLOAT_MARGIN` (relative) and rounded on the
 * `GRID` so that costs are rounded UP and what remains is rounded DOWN.
 *
 * Specs: basic composition (Dwork–Roth 2014, Thm 3.16); advanced composition (Dwork–Rothblum–
 * Vadhan 2010; Dwork–Roth Thm 3.20); zCDP composition and conversions (Bun–Steinke 2016,
 * Prop. 1.3: ρ-zCDP ⇒ (ρ + 2√(ρ ln(1/δ)), δ)-DP; Prop. 1.4: ε-DP ⇒ ε²/2-zCDP; Lemma 2.3).
 */
import { invalid } from "../errors.js";
import {
  type Rational,
  type RationalLike,
  type RationalJson,
  ratFrom,
  ratAdd,
  ratMul,
  ratCompare,
  ratCeilTo,
  ratFloorTo,
  ratFromFloatExact,
  ratToNumber,
  ratToDecimal,
  ratToJson,
  rat,
  ZERO,
} from "./rational.js";

/** The cost of one release, known before it runs. */
export type PrivacyCost =
  { kind: "pureDp"; epsilon: Rational } | { kind: "approxDp"; epsilon: Rational; delta: Rational } | { kind: "zCdp"; rho: Rational };

export type AccountantKind = PrivacyCost["kind"];
export const ACCOUNTANTS: readonly AccountantKind[] = ["pureDp", "approxDp", "zCdp"];

/** JSON-able form of a cost (rationals as `{num, den}` strings) plus a readable `text`. */
export type PrivacyCostJson =
  | { kind: "pureDp"; epsilon: RationalJson; text: string }
  | { kind: "approxDp"; epsilon: RationalJson; delta: RationalJson; text: string }
  | { kind: "zCdp"; rho: RationalJson; text: string };

/** Smallest ε or ρ accepted: below this a "cost" is noise-free in effect and almost surely a units bug. */
export const MIN_PARAM: Rational = rat(1n, 10n ** 9n);
/** Largest ε or ρ accepted (a single release with ε > 1e4 protects nothing). */
export const MAX_PARAM: Rational = rat(10n ** 4n);
/** δ must lie in [MIN_DELTA, MAX_DELTA]. */
export const MIN_DELTA: Rational = rat(1n, 10n ** 100n);
export const MAX_DELTA: Rational = rat(1n, 2n);
/** Rounding grid for irrational results: multiples of 1e-12. */
export const GRID = 10n ** 12n;
/** Relative inflation applied to float evaluations of √/ln/exp before rounding (≫ their error). */
export const FLOAT_MARGIN = 1e-9;

const MAX_BITS = 512;

/**
 * Validate one positive privacy parameter (ε, ρ, or δ when `isDelta`), refusing zero,
 * negative, NaN, ∞, absurdly tiny/huge values and oversized fractions, naming `field`.
 * @example checkParam("0.5", "epsilon") // { num: 1n, den: 2n }
 */
export function checkParam(x: RationalLike | RationalJson, field: string, isDelta = false): Rational {
  const r = ratFrom(x as RationalLike, field);
  const lo = isDelta ? MIN_DELTA : MIN_PARAM;
  const hi = isDelta ? MAX_DELTA : MAX_PARAM;
  const range = isDelta ? "rational in [1e-100, 0.5]" : "rational in [1e-9, 1e4]";
  if (r.num.toString(2).length > MAX_BITS || r.den.toString(2).length > MAX_BITS)
    invalid(field, `${range} with numerator and denominator below 2^${MAX_BITS}`, "oversized fraction", "DP_PARAM_INVALID");
  if (ratCompare(r, lo) < 0 || ratCompare(r, hi) > 0) invalid(field, range, ratToNumber(r), "DP_PARAM_INVALID");
  return r;
}

/**
 * Parse and validate a cost from untrusted input (notebook cells, stored JSON).
 * @example parseCost({ kind: "approxDp", epsilon: "0.5", delta: "1e-6" })
 */
export function parseCost(input: unknown, field = "cost"): PrivacyCost {
  if (typeof input !== "object" || input === null) return invalid(field, "object {kind, ...}", input, "DP_PARAM_INVALID");
  const o = input as Record<string, unknown>;
  const allowed: Record<string, string[]> = {
    pureDp: ["kind", "epsilon", "text"],
    approxDp: ["kind", "epsilon", "delta", "text"],
    zCdp: ["kind", "rho", "text"],
  };
  const keys = allowed[o.kind as string];
  if (!keys) return invalid(`${field}.kind`, `"pureDp" | "approxDp" | "zCdp"`, o.kind, "DP_PARAM_INVALID");
  for (const k of Object.keys(o))
    if (!keys.includes(k)) invalid(`${field}.${k}`, `no such field for kind ${String(o.kind)}`, o[k], "DP_PARAM_INVALID");
  const p = (k: string, d = false) => checkParam(o[k] as RationalLike, `${field}.${k}`, d);
  if (o.kind === "pureDp") return { kind: "pureDp", epsilon: p("epsilon") };
  if (o.kind === "approxDp") return { kind: "approxDp", epsilon: p("epsilon"), delta: p("delta", true) };
  return { kind: "zCdp", rho: p("rho") };
}

/** ε-DP cost. @example pureDp("0.1") */
export const pureDp = (epsilon: RationalLike): PrivacyCost => ({ kind: "pureDp", epsilon: checkParam(epsilon, "epsilon") });
/** (ε, δ)-DP cost. @example approxDp("1", "1e-6") */
export const approxDp = (epsilon: RationalLike, delta: RationalLike): PrivacyCost => ({
  kind: "approxDp",
  epsilon: checkParam(epsilon, "epsilon"),
  delta: checkParam(delta, "delta", true),
});
/** ρ-zCDP cost. @example zCdp("0.005") */
export const zCdp = (rho: RationalLike): PrivacyCost => ({ kind: "zCdp", rho: checkParam(rho, "rho") });

/** δ for display: 6 significant digits, "1e-7" / "0.000001" / "0". @example deltaText(rat(1, 10 ** 7)) // "1e-7" */
export const deltaText = (r: Rational): string => (r.num === 0n ? "0" : String(Number(ratToNumber(r).toPrecision(6))));

/** Readable text: "ε = 0.1", "ε = 1, δ = 0.000001", "ρ = 0.005". @example costText(zCdp("0.005")) // "ρ = 0.005" */
export function costText(c: PrivacyCost): string {
  const d = (r: Rational) => ratToDecimal(r, 12);
  if (c.kind === "pureDp") return `ε = ${d(c.epsilon)}`;
  if (c.kind === "approxDp") return `ε = ${d(c.epsilon)}, δ = ${deltaText(c.delta)}`;
  return `ρ = ${d(c.rho)}`;
}

/** JSON form for results and storage. @example costToJson(pureDp("0.1")).text // "ε = 0.1" */
export function costToJson(c: PrivacyCost): PrivacyCostJson {
  const text = costText(c);
  if (c.kind === "pureDp") return { kind: c.kind, epsilon: ratToJson(c.epsilon), text };
  if (c.kind === "approxDp") return { kind: c.kind, epsilon: ratToJson(c.epsilon), delta: ratToJson(c.delta), text };
  return { kind: c.kind, rho: ratToJson(c.rho), text };
}

/** A rational ≥ the real number whose float evaluation is `f` (costs: round up). @example upperRational(Math.sqrt(2)) // 1414213563/1000000000 (≥ √2) */
export function upperRational(f: number, field = "value"): Rational {
  if (!Number.isFinite(f) || f < 0) invalid(field, "finite non-negative result", f, "DP_PARAM_INVALID");
  return ratCeilTo(ratFromFloatExact(f * (1 + FLOAT_MARGIN) + Number.MIN_VALUE), GRID);
}
/** A rational ≤ the real number whose float evaluation is `f` (remaining: round down). @example lowerRational(Math.sqrt(2)) // ≤ √2 */
export function lowerRational(f: number, field = "value"): Rational {
  if (!Number.isFinite(f)) invalid(field, "finite result", f, "DP_PARAM_INVALID");
  if (f <= 0) return ZERO;
  return ratFloorTo(ratFromFloatExact(f * (1 - FLOAT_MARGIN)), GRID);
}

/**
 * Express `cost` in the units of an accountant. pureDp → approxDp is (ε, 0); pureDp → zCdp
 * is ρ = ε²/2 (exact). An approxDp or zCdp cost cannot be charged to a pure budget, and
 * approxDp ↔ zCdp is refused (it needs a δ split the analyst must choose).
 * @example costIn("zCdp", pureDp("1")) // { kind: "zCdp", rho: 1/2 }
 */
export function costIn(accountant: AccountantKind, cost: PrivacyCost): PrivacyCost {
  if (cost.kind === accountant) return cost;
  if (cost.kind === "pureDp" && accountant === "approxDp") return { kind: "approxDp", epsilon: cost.epsilon, delta: ZERO };
  if (cost.kind === "pureDp" && accountant === "zCdp")
    return { kind: "zCdp", rho: ratMul(rat(1n, 2n), ratMul(cost.epsilon, cost.epsilon)) };
  return invalid("cost.kind", `a cost convertible to a ${accountant} budget (pureDp or ${accountant})`, cost.kind, "DP_PARAM_INVALID");
}

/**
 * Basic (sequential) composition: Σε, Σδ; or Σρ for zCDP. Costs must share an accountant after `costIn`.
 * @example composeBasic("zCdp", [zCdp("0.1"), pureDp("1")]) // { kind: "zCdp", rho: 3/5 }
 */
export function composeBasic(accountant: AccountantKind, costs: readonly PrivacyCost[]): PrivacyCost {
  let eps = ZERO;
  let delta = ZERO;
  let rho = ZERO;
  for (const c0 of costs) {
    const c = costIn(accountant, c0);
    if (c.kind === "pureDp") eps = ratAdd(eps, c.epsilon);
    else if (c.kind === "approxDp") {
      eps = ratAdd(eps, c.epsilon);
      delta = ratAdd(delta, c.delta);
    } else rho = ratAdd(rho, c.rho);
  }
  if (accountant === "pureDp") return { kind: "pureDp", epsilon: eps };
  if (accountant === "approxDp") return { kind: "approxDp", epsilon: eps, delta };
  return { kind: "zCdp", rho };
}

function posInt(k: number, field: string): number {
  if (!Number.isSafeInteger(k) || k < 1 || k > 1e9) invalid(field, "integer in [1, 1e9]", k, "DP_PARAM_INVALID");
  return k;
}

/**
 * Advanced composition of k releases each (ε₀, δ₀)-DP: (ε₀√(2k ln(1/δ′)) + kε₀(e^{ε₀} − 1),
 * kδ₀ + δ′)-DP, ε rounded up. Returns the better of this and basic composition (kε₀, kδ₀).
 * @example composeAdvanced(pureDp("0.1"), 100, "1e-6") // ε ≈ 6.31 (basic would be 10)
 */
export function composeAdvanced(
  each: PrivacyCost,
  k: number,
  deltaPrime: RationalLike,
): { kind: "approxDp"; epsilon: Rational; delta: Rational } {
  posInt(k, "k");
  const dp = checkParam(deltaPrime, "deltaPrime", true);
  const c = costIn("approxDp", each) as { kind: "approxDp"; epsilon: Rational; delta: Rational };
  const e0 = ratToNumber(c.epsilon);
  const f = e0 * Math.sqrt(2 * k * Math.log(1 / ratToNumber(dp))) + k * e0 * Math.expm1(e0);
  const basic = ratMul(c.epsilon, rat(k));
  // for large ε₀ the bound overflows (and is worse than basic anyway): fall back, never fail open
  const adv = Number.isFinite(f) ? upperRational(f, "epsilon") : undefined;
  if (adv && ratCompare(adv, basic) < 0) return { kind: "approxDp", epsilon: adv, delta: ratAdd(ratMul(c.delta, rat(k)), dp) };
  return { kind: "approxDp", epsilon: basic, delta: ratMul(c.delta, rat(k)) };
}

/**
 * ρ-zCDP ⇒ (ρ + 2√(ρ ln(1/δ)), δ)-DP (Bun–Steinke Prop. 1.3), ε rounded up.
 * @example zcdpToApproxDp("0.5", "1e-6") // ε ≈ 5.757
 */
export function zcdpToApproxDp(rho: RationalLike, delta: RationalLike): { kind: "approxDp"; epsilon: Rational; delta: Rational } {
  const r = ratFrom(rho, "rho");
  if (r.num < 0n) invalid("rho", "non-negative rational", ratToNumber(r), "DP_PARAM_INVALID");
  const d = checkParam(delta, "delta", true);
  const rf = ratToNumber(r);
  const eps = r.num === 0n ? ZERO : upperRational(rf + 2 * Math.sqrt(rf * Math.log(1 / ratToNumber(d))), "epsilon");
  return { kind: "approxDp", epsilon: eps, delta: d };
}

/**
 * The largest ρ whose zCDP guarantee implies (ε, δ)-DP: ρ = (√(ε + L) − √L)², L = ln(1/δ);
 * rounded DOWN (it sizes a budget), so that `zcdpToApproxDp(ρ, δ).epsilon ≤ ε` exactly.
 * @example approxDpToZcdpBudget("1", "1e-6") // ρ ≈ 0.0189
 */
export function approxDpToZcdpBudget(epsilon: RationalLike, delta: RationalLike): Rational {
  const e = ratToNumber(checkParam(epsilon, "epsilon"));
  const L = Math.log(1 / ratToNumber(checkParam(delta, "delta", true)));
  const s = Math.sqrt(e + L) - Math.sqrt(L);
  // √(e+L) − √L = e / (√(e+L) + √L) avoids cancellation
  const stable = e / (Math.sqrt(e + L) + Math.sqrt(L));
  // extra 1e-6 relative slack so that zcdpToApproxDp(ρ, δ) (which rounds up) stays ≤ ε
  return lowerRational(Math.min(s * s, stable * stable) * (1 - 1e-6), "rho");
}

/**
 * Does `spent + cost` fit within `total`? All three are in the same accountant's units.
 * Returns the per-dimension requested/remaining/difference for error messages.
 * @example fits(pureDp("1"), pureDp("0.9"), pureDp("0.2")).ok // false
 */
export function fits(
  total: PrivacyCost,
  spent: PrivacyCost,
  cost: PrivacyCost,
): { ok: boolean; dims: { name: "epsilon" | "delta" | "rho"; requested: Rational; remaining: Rational }[] } {
  const dims: { name: "epsilon" | "delta" | "rho"; requested: Rational; remaining: Rational }[] = [];
  const dim = (name: "epsilon" | "delta" | "rho", t: Rational, s: Rational, c: Rational) =>
    dims.push({ name, requested: c, remaining: ratAdd(t, { num: -s.num, den: s.den }) });
  if (total.kind !== spent.kind || total.kind !== cost.kind)
    return invalid("cost.kind", `a ${total.kind} cost`, cost.kind, "DP_PARAM_INVALID");
  if (total.kind === "pureDp") dim("epsilon", total.epsilon, (spent as typeof total).epsilon, (cost as typeof total).epsilon);
  else if (total.kind === "approxDp") {
    dim("epsilon", total.epsilon, (spent as typeof total).epsilon, (cost as typeof total).epsilon);
    dim("delta", total.delta, (spent as typeof total).delta, (cost as typeof total).delta);
  } else dim("rho", total.rho, (spent as typeof total).rho, (cost as typeof total).rho);
  return { ok: dims.every((d) => ratCompare(d.requested, d.remaining) <= 0), dims };
}

/** The zero cost of an accountant (what a fresh budget has spent). @example zeroCost("approxDp") // { kind: "approxDp", epsilon: 0, delta: 0 } */
export function zeroCost(accountant: AccountantKind): PrivacyCost {
  if (accountant === "pureDp") return { kind: "pureDp", epsilon: ZERO };
  if (accountant === "approxDp") return { kind: "approxDp", epsilon: ZERO, delta: ZERO };
  return { kind: "zCdp", rho: ZERO };
}

/** Validate an accountant name. @example assertAccountant("zCdp") */
export function assertAccountant(x: unknown, field = "accountant"): AccountantKind {
  if (typeof x !== "string" || !(ACCOUNTANTS as readonly string[]).includes(x))
    invalid(field, `"pureDp" | "approxDp" | "zCdp"`, x, "DP_PARAM_INVALID");
  return x as AccountantKind;
}
