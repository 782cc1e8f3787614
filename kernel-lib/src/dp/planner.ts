/**
 * Budget planning: what the remaining budget buys, and accuracy-first ε.
 *
 * "Setting epsilon is very hard" (OpenDP dp-wizard #521): analysts think in error bars. This
 * module answers "I need ±N at 95% confidence" with the budget of every registered mechanism
 * (registry.ts) that achieves it — ε for the discrete Laplace (pure DP), ρ for the discrete
 * Gaussian (zCDP), … — using the tail of the discrete distribution (exact for the Laplace,
 * and for the Gaussian up to σ² = 1e6; the continuous formula is shown beside the built-ins)
 * — and "how many queries of this
 * cost / accuracy does the remaining budget buy", side by side for basic composition,
 * advanced composition and zCDP.
 *
 * Rounding: a recommended ε or ρ is rounded UP (a little more budget, never less accuracy);
 * counts are exact floors over rationals (ledger semantics), so `count` charges always fit.
 * Floats are used only to locate the noise scale; the result is re-checked at the rounded
 * rational parameter.
 */
import { invalid } from "../errors.js";
import {
  type Rational,
  type RationalLike,
  ratFrom,
  ratDiv,
  ratFloor,
  ratToNumber,
  ratToDecimal,
  ratCompare,
  ratMul,
  rat,
  ratCeilTo,
  ratFromFloatExact,
} from "./rational.js";
import {
  type PrivacyCost,
  type PrivacyCostJson,
  costIn,
  composeAdvanced,
  approxDpToZcdpBudget,
  zcdpToApproxDp,
  parseCost,
  checkParam,
  costText,
  costToJson,
} from "./accountant.js";
import {
  costOf,
  discreteGaussian,
  discreteLaplace,
  erfc,
  GAUSSIAN_EXACT_TAIL_MAX,
  mechanisms,
  sensitivityFor,
  type NoiseMechanism,
} from "./registry.js";
import type { BudgetStatus } from "./ledger.js";

const MAX_COUNT = 1e12;

function asCost(c: PrivacyCost | PrivacyCostJson, field: string): PrivacyCost {
  if (c && typeof c === "object" && "text" in c) {
    const { text: _t, ...rest } = c as PrivacyCostJson;
    return parseRemaining(rest, field);
  }
  return parseRemaining(c, field);
}

/** Remaining budgets may be 0 (parseCost refuses 0), so parse dims as non-negative rationals. */
function parseRemaining(c: unknown, field: string): PrivacyCost {
  const o = c as Record<string, RationalLike>;
  const nn = (k: string) => {
    const r = ratFrom(o[k] as RationalLike, `${field}.${k}`);
    if (r.num < 0n) invalid(`${field}.${k}`, "non-negative rational", ratToNumber(r), "DP_PARAM_INVALID");
    return r;
  };
  const kind = (c as { kind?: string })?.kind;
  if (kind === "pureDp") return { kind, epsilon: nn("epsilon") };
  if (kind === "approxDp") return { kind, epsilon: nn("epsilon"), delta: nn("delta") };
  if (kind === "zCdp") return { kind, rho: nn("rho") };
  return invalid(`${field}.kind`, `"pureDp" | "approxDp" | "zCdp"`, kind, "DP_PARAM_INVALID");
}

const floorDiv = (a: Rational, b: Rational) => (b.num === 0n ? MAX_COUNT : Math.min(MAX_COUNT, Number(ratFloor(ratDiv(a, b)))));

/**
 * How many charges of `perQuery` fit in `remaining` under basic composition (exact).
 * @example affordableCount(ledger.budgetStatus(room, key).remaining, pureDp("0.1")) // 7
 */
export function affordableCount(remaining: PrivacyCost | PrivacyCostJson, perQuery: PrivacyCost): number {
  const rem = asCost(remaining, "remaining");
  const c = costIn(rem.kind, parseCost(perQuery, "perQuery"));
  if (rem.kind === "pureDp" && c.kind === "pureDp") return floorDiv(rem.epsilon, c.epsilon);
  if (rem.kind === "approxDp" && c.kind === "approxDp") return Math.min(floorDiv(rem.epsilon, c.epsilon), floorDiv(rem.delta, c.delta));
  if (rem.kind === "zCdp" && c.kind === "zCdp") return floorDiv(rem.rho, c.rho);
  return 0;
}

/** Accuracy target: |noise| ≤ accuracy with probability ≥ confidence, for one released integer. */
export interface AccuracyTarget {
  /** ± error in output units (counts: rows; fixed-point sums: grid steps). */
  accuracy: number;
  /** e.g. 0.95 */
  confidence: number;
  /** L1 sensitivity (Laplace). Default 1n. */
  sensitivity?: bigint;
  /** Squared L2 sensitivity (Gaussian). Default sensitivity². */
  l2Squared?: bigint;
}

/** The budget one mechanism needs for an accuracy target. */
export interface MechanismAccuracy {
  /** Display name, e.g. "discreteLaplace". */
  mechanism: string;
  /** Name in a template's `noise.mechanism`, and its budget field (e.g. "epsilonPerAggregate"). */
  templateName: string;
  budgetField: string;
  /** Per-release budget (ε or ρ, rounded up to 6 significant digits) as a decimal string. */
  budget: string;
  cost: PrivacyCostJson;
  /** Noise parameter at that budget (e.g. Laplace scale, Gaussian σ²) and its name. */
  parameter: string;
  parameterName: string;
  /** P(|noise| > accuracy) at that parameter: ≤ 1 − confidence. */
  achievedTail: number;
}

export interface AccuracyPlan {
  accuracy: number;
  confidence: number;
  /** One entry per registered mechanism, built-ins first. */
  mechanisms: MechanismAccuracy[];
  laplace: { epsilon: string; cost: PrivacyCostJson; scale: string; achievedTail: number; continuousEpsilon: number };
  gaussian: { rho: string; cost: PrivacyCostJson; sigma2: string; achievedTail: number; continuousRho: number; exactTail: boolean };
}

export { erfc } from "./registry.js";

function checkTarget(t: AccuracyTarget): { n: number; beta: number; l1: bigint; l2s: bigint } {
  if (typeof t !== "object" || t === null) invalid("target", "{ accuracy, confidence }", t, "DP_PARAM_INVALID");
  if (typeof t.accuracy !== "number" || !Number.isFinite(t.accuracy) || t.accuracy < 0 || t.accuracy > 1e12)
    invalid("accuracy", "finite number in [0, 1e12]", t.accuracy, "DP_PARAM_INVALID");
  if (typeof t.confidence !== "number" || !(t.confidence >= 0.5 && t.confidence <= 1 - 1e-12))
    invalid("confidence", "number in [0.5, 1 − 1e-12]", t.confidence, "DP_PARAM_INVALID");
  const l1 = t.sensitivity ?? 1n;
  if (typeof l1 !== "bigint" || l1 < 1n) invalid("sensitivity", "positive bigint", l1, "DP_PARAM_INVALID");
  const l2s = t.l2Squared ?? l1 * l1;
  if (typeof l2s !== "bigint" || l2s < 1n) invalid("l2Squared", "positive bigint", l2s, "DP_PARAM_INVALID");
  return { n: Math.floor(t.accuracy), beta: 1 - t.confidence, l1, l2s };
}

/** Largest x in (lo, hi) with ok(x), for ok monotone decreasing (true then false). Geometric bisection. */
function largest(ok: (x: number) => boolean, lo: number, hi: number): number {
  for (let i = 0; i < 200 && hi / lo > 1 + 1e-12; i++) {
    const mid = Math.sqrt(lo * hi);
    if (ok(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Round a parameter up to 6 significant digits (a "nice" rational ≥ x). */
function niceUp(x: number): Rational {
  const e = Math.floor(Math.log10(x)) - 5;
  const den = e < 0 ? 10n ** BigInt(-e) : 1n;
  const r = ratCeilTo(ratFromFloatExact(x), den);
  return e > 0 ? ratMul(rat(ratFloor(ratDiv(r, rat(10n ** BigInt(e)))) + 1n), rat(10n ** BigInt(e))) : r;
}

/** The smallest budget of `m` whose noise keeps |X| ≤ n with probability ≥ 1 − beta. */
function planFor(
  m: NoiseMechanism,
  n: number,
  beta: number,
  l1: bigint,
  l2s: bigint,
): { plan: MechanismAccuracy; budget: Rational; parameter: Rational } {
  const sens = sensitivityFor(m, { l1, l2Squared: l2s });
  // the tail grows with the noise parameter: the largest parameter that meets the target…
  const p = largest((x) => m.tail(n, ratFromFloatExact(x)) <= beta, 1e-9, 1e18);
  // …costs the least; round that cost UP (a little more budget, never less accuracy)
  let budget = niceUp(ratToNumber(m.costFor(ratFromFloatExact(p), sens)));
  if (ratCompare(budget, rat(1n, 10n ** 9n)) < 0) budget = rat(1n, 10n ** 9n);
  let parameter = m.parameterFor(budget, sens);
  // re-check at the rational parameter: a mechanism that rounds its parameter (e.g. onto a
  // grid) may land just past the target; then a little more budget, until it holds
  for (let i = 0; i < 50 && m.tail(n, parameter) > beta; i++) {
    budget = niceUp(ratToNumber(budget) * (1 + 1e-5));
    parameter = m.parameterFor(budget, sens);
  }
  const cost = costOf(m, checkParam(budget, m.budgetField));
  return {
    budget,
    parameter,
    plan: {
      mechanism: m.displayName,
      templateName: m.templateName,
      budgetField: m.budgetField,
      budget: ratToDecimal(budget, 12),
      cost: costToJson(cost),
      parameter: ratToDecimal(parameter, 9),
      parameterName: m.parameterName,
      achievedTail: m.tail(n, parameter),
    },
  };
}

/**
 * Accuracy-first: the budget of every registered mechanism (ε for the discrete Laplace, ρ for
 * the discrete Gaussian, …) such that the released integer is within ±accuracy of the truth
 * with probability ≥ confidence, from the discrete tails; for the built-ins, the
 * continuous-formula values beside them for comparison.
 * @example epsilonForAccuracy({ accuracy: 10, confidence: 0.95 }).laplace.epsilon // "0.272..."
 */
export function epsilonForAccuracy(target: AccuracyTarget): AccuracyPlan {
  const { n, beta, l1, l2s } = checkTarget(target);
  const all = mechanisms().map((m) => ({ m, ...planFor(m, n, beta, l1, l2s) }));
  const lap = all.find((x) => x.m === discreteLaplace)!;
  const gau = all.find((x) => x.m === discreteGaussian)!;
  // continuous: Laplace P(|X|>n) = e^{-n/b}; Gaussian P(|X|>n) = erfc(n/(σ√2))
  const z = largest((z) => erfc(z / Math.SQRT2) >= beta, 1e-9, 40);
  return {
    accuracy: target.accuracy,
    confidence: target.confidence,
    mechanisms: all.map((x) => x.plan),
    laplace: {
      epsilon: lap.plan.budget,
      cost: lap.plan.cost,
      scale: lap.plan.parameter,
      achievedTail: lap.plan.achievedTail,
      continuousEpsilon: n === 0 ? Infinity : (Number(l1) * Math.log(1 / beta)) / n,
    },
    gaussian: {
      rho: gau.plan.budget,
      cost: gau.plan.cost,
      sigma2: gau.plan.parameter,
      achievedTail: gau.plan.achievedTail,
      continuousRho: n === 0 ? Infinity : (Number(l2s) * z * z) / (2 * n * n),
      exactTail: ratToNumber(gau.parameter) <= GAUSSIAN_EXACT_TAIL_MAX,
    },
  };
}

/** One row of a side-by-side comparison of accountants. */
export interface AccountantRow {
  accountant: "pureDp (basic composition)" | "approxDp (advanced composition)" | "zCdp (discrete Gaussian)";
  /** Display name of the mechanism (registry.ts). */
  mechanism: string;
  perQuery: string;
  /** How many queries at this accuracy the remaining budget buys. */
  queries: number;
}

/**
 * What the remaining budget buys at a target accuracy, per accountant. For a pureDp budget
 * only basic composition applies; for a zCdp budget only the Gaussian; for an (ε, δ) budget
 * all three (advanced composition uses the remaining δ; zCDP converts (ε, δ) → ρ).
 * @example whatRemainingBuys(status.remaining, { accuracy: 10, confidence: 0.95 })
 */
export function whatRemainingBuys(
  remaining: PrivacyCost | PrivacyCostJson,
  target: AccuracyTarget,
): { plan: AccuracyPlan; rows: AccountantRow[] } {
  const rem = asCost(remaining, "remaining");
  const plan = epsilonForAccuracy(target);
  const lap = asCost(plan.laplace.cost, "plan");
  const gau = asCost(plan.gaussian.cost, "plan");
  const rows: AccountantRow[] = [];
  const lapName = discreteLaplace.displayName;
  const gauName = discreteGaussian.displayName;
  if (rem.kind === "pureDp" || rem.kind === "approxDp")
    rows.push({
      accountant: "pureDp (basic composition)",
      mechanism: lapName,
      perQuery: costText(lap),
      queries: affordableCount(rem, lap),
    });
  if (rem.kind === "approxDp") {
    let k = 0;
    if (rem.delta.num > 0n && ratCompare(rem.delta, rat(1n, 10n ** 100n)) >= 0) {
      const dp = ratCompare(rem.delta, rat(1n, 2n)) > 0 ? rat(1n, 2n) : rem.delta;
      const fitsK = (k: number) => ratCompare(composeAdvanced(lap, k, dp).epsilon, rem.epsilon) <= 0;
      let hi = 1;
      while (hi < MAX_COUNT && fitsK(hi)) hi *= 2;
      let lo = hi === 1 ? 0 : hi / 2;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (fitsK(mid)) lo = mid;
        else hi = mid;
      }
      k = lo;
    }
    rows.push({ accountant: "approxDp (advanced composition)", mechanism: lapName, perQuery: costText(lap), queries: k });
    let kz = 0;
    if (rem.epsilon.num > 0n && ratCompare(rem.epsilon, rat(1n, 10n ** 9n)) >= 0 && ratCompare(rem.delta, rat(1n, 10n ** 100n)) >= 0) {
      const rho = approxDpToZcdpBudget(rem.epsilon, ratCompare(rem.delta, rat(1n, 2n)) > 0 ? rat(1n, 2n) : rem.delta);
      kz = affordableCount({ kind: "zCdp", rho }, gau);
    }
    rows.push({ accountant: "zCdp (discrete Gaussian)", mechanism: gauName, perQuery: costText(gau), queries: kz });
  }
  if (rem.kind === "zCdp")
    rows.push({ accountant: "zCdp (discrete Gaussian)", mechanism: gauName, perQuery: costText(gau), queries: affordableCount(rem, gau) });
  return { plan, rows };
}

/**
 * Total privacy loss of k queries at the target accuracy, per accountant, expressed as (ε, δ).
 * @example compareAccountants({ accuracy: 10, confidence: 0.95 }, 50, "1e-6")
 */
export function compareAccountants(
  target: AccuracyTarget,
  k: number,
  delta: RationalLike,
): { accountant: string; totalEpsilon: string; delta: string }[] {
  if (!Number.isSafeInteger(k) || k < 1 || k > 1e9) invalid("k", "integer in [1, 1e9]", k, "DP_PARAM_INVALID");
  const d = checkParam(delta, "delta", true);
  const plan = epsilonForAccuracy(target);
  const lap = asCost(plan.laplace.cost, "plan") as { kind: "pureDp"; epsilon: Rational };
  const gau = asCost(plan.gaussian.cost, "plan") as { kind: "zCdp"; rho: Rational };
  const adv = composeAdvanced(lap, k, d);
  const z = zcdpToApproxDp(ratMul(gau.rho, rat(k)), d);
  const ds = ratToNumber(d).toPrecision(3);
  return [
    { accountant: "pureDp (basic composition)", totalEpsilon: ratToDecimal(ratMul(lap.epsilon, rat(k)), 6), delta: "0" },
    {
      accountant: "approxDp (advanced composition)",
      totalEpsilon: ratToDecimal(adv.epsilon, 6),
      delta: ratToNumber(adv.delta).toPrecision(3),
    },
    { accountant: "zCdp (discrete Gaussian)", totalEpsilon: ratToDecimal(z.epsilon, 6), delta: ds },
  ];
}

/** What `budgetReport` adds to each budget's status. */
export interface BudgetWithBuys extends BudgetStatus {
  /** Per named query: how many more the remaining budget buys (basic composition, exact). */
  buys: { name: string; perQuery: string; count: number }[];
  /** Per accountant at the target accuracy (when a target is given). */
  atAccuracy?: AccountantRow[];
}

/** JSON-able budget overview for `budget()`: spent, remaining, what remaining buys, and text. */
export interface BudgetReport {
  roomId: string;
  budgets: BudgetWithBuys[];
  /** Per named query: the count if every listed budget is charged (the minimum across them). */
  overall: { name: string; count: number }[];
  target?: { accuracy: number; confidence: number };
  text: string;
}

/**
 * Spent / remaining / what the remaining budget buys, for every budget of a room.
 * @example
 * budgetReport(ledger.status("room-1"), { queries: [{ name: "lift", cost: templateCost(t, p) }], target: { accuracy: 50, confidence: 0.95 } }).text
 */
export function budgetReport(
  status: { roomId: string; budgets: readonly BudgetStatus[] },
  opts: { queries?: readonly { name: string; cost: PrivacyCost | PrivacyCostJson }[]; target?: AccuracyTarget } = {},
): BudgetReport {
  if (!status || !Array.isArray(status.budgets)) invalid("status", "ledger.status(roomId)", status);
  const queries = (opts.queries ?? []).map((q, i) => {
    if (typeof q?.name !== "string" || q.name.length === 0) invalid(`queries[${i}].name`, "non-empty string", q?.name);
    const cost =
      "text" in (q.cost as object)
        ? parseCost(asCost(q.cost, `queries[${i}].cost`), `queries[${i}].cost`)
        : parseCost(q.cost, `queries[${i}].cost`);
    return { name: q.name, cost };
  });
  const lines = [`Privacy budgets of room ${status.roomId}`];
  const budgets = status.budgets.map((b) => {
    const buys = queries.map((q) => {
      let count = 0;
      try {
        count = affordableCount(b.remaining, q.cost);
      } catch {
        count = 0; // cost not chargeable to this accountant: buys nothing
      }
      return { name: q.name, perQuery: costText(q.cost), count };
    });
    const out: BudgetWithBuys = { ...b, buys };
    if (opts.target) out.atAccuracy = whatRemainingBuys(b.remaining, opts.target).rows;
    lines.push(`  ${b.scope}/${b.subject} (${b.accountant}): spent ${b.spent.text} of ${b.total.text}; remaining ${b.remaining.text}`);
    for (const x of buys) lines.push(`    buys ${x.count} × ${x.name} (${x.perQuery} each)`);
    for (const r of out.atAccuracy ?? [])
      lines.push(
        `    at ±${opts.target!.accuracy} with ${opts.target!.confidence * 100}% confidence: ${r.queries} queries — ${r.accountant}, ${r.perQuery} each`,
      );
    if (b.refreshWarning)
      lines.push(`    refresh ${b.refresh} (next ${b.nextRefresh}); lifetime spent ${b.lifetimeSpent.text}. WARNING: ${b.refreshWarning}`);
    return out;
  });
  const overall = queries.map((q, i) => ({ name: q.name, count: budgets.length ? Math.min(...budgets.map((b) => b.buys[i]!.count)) : 0 }));
  const rep: BudgetReport = { roomId: status.roomId, budgets, overall, text: lines.join("\n") };
  if (opts.target) rep.target = { accuracy: opts.target.accuracy, confidence: opts.target.confidence };
  return rep;
}
