/**
 * The noise-mechanism registry: a mechanism is a value, not a string switched on.
 *
 * Each `NoiseMechanism` knows its names (the one a template spells in `noise.mechanism`, part
 * of the approved hash, and the one results and displays show), the template field carrying
 * its per-aggregate budget, its accountant (pure ε-DP or ρ-zCDP) and which sensitivity
 * calibrates it (L1 or squared L2), its noise parameter for a budget and sensitivity, the
 * budget a parameter costs, how to sample it exactly, and its variance and tail (for
 * previews, the planner and confidence intervals). The template schema, the release, the
 * planner, the design previews and the display iterate over or look up this registry;
 * adding a mechanism is one `registerMechanism` call in `dp/` (or, for a test, in the test
 * file) and touches nothing that switches on names.
 *
 * Built-ins: `laplace` / `discreteLaplace` (ε = Δ₁/scale) and `gaussian` / `discreteGaussian`
 * (ρ = Δ₂²/(2σ²)), with the exact samplers of `mechanisms.ts`. Tails: exact for the Laplace;
 * for the Gaussian exact up to σ² = 1e6 and the continuous midpoint integral beyond.
 *
 * Threat model: a registered mechanism is trusted code (it is the privacy claim). The
 * registry checks a definition's shape and names, not its mathematics: `costFor` must be an
 * upper bound of the true privacy loss and `parameterFor(b, Δ)` must return a parameter
 * whose `costFor` is ≤ b (the release charges `b` per quantity). Registration is
 * process-wide, like the built-ins; `registerMechanism` returns the function that removes it.
 */
import type { Rng } from "../rng.js";
import { invalid } from "../errors.js";
import type { PrivacyCost } from "./accountant.js";
import { ratToNumber, type Rational } from "./rational.js";
import {
  discreteGaussianTail,
  discreteGaussianVariance,
  discreteLaplaceTail,
  discreteLaplaceVariance,
  gaussianRhoFor,
  gaussianSigma2For,
  laplaceEpsilonFor,
  laplaceScaleFor,
  sampleDiscreteGaussian,
  sampleDiscreteGaussianMany,
  sampleDiscreteLaplace,
  sampleDiscreteLaplaceMany,
} from "./mechanisms.js";

/** The accountant a mechanism's cost is counted in. */
export type MechanismUnit = "pureDp" | "zCdp";

/** One noise mechanism for integer releases. */
export interface NoiseMechanism {
  /** Name in a template's `noise.mechanism` (wire format, part of the approved hash), e.g. `"laplace"`. */
  readonly templateName: string;
  /** Name in results, previews and display payloads, e.g. `"discreteLaplace"`. */
  readonly displayName: string;
  /** Template field with the per-aggregate budget, e.g. `"epsilonPerAggregate"`. */
  readonly budgetField: string;
  /** Accountant of the budget: ε (`pureDp`) or ρ (`zCdp`). */
  readonly unit: MechanismUnit;
  /** Sensitivity that calibrates the noise: L1 or squared L2. */
  readonly sensitivity: "l1" | "l2Squared";
  /** Name of the noise parameter in texts, e.g. `"scale"` or `"σ²"`. */
  readonly parameterName: string;
  /** Noise parameter spending at most `budget` on a quantity of sensitivity `s`. */
  parameterFor(budget: Rational, s: bigint): Rational;
  /** Budget (in `unit`) that noise `parameter` spends on a quantity of sensitivity `s`. */
  costFor(parameter: Rational, s: bigint): Rational;
  /** One exact integer noise sample. */
  sample(parameter: Rational, rng: Rng): bigint;
  /** `count` independent samples. */
  sampleMany(parameter: Rational, count: number, rng: Rng): bigint[];
  /** Variance of the noise (float; descriptive). */
  variance(parameter: Rational): number;
  /** Two-sided tail P(|X| > k) for an integer k ≥ 0 (float; descriptive; fast at any parameter). */
  tail(k: number, parameter: Rational): number;
}

export const discreteLaplace: NoiseMechanism = Object.freeze({
  templateName: "laplace",
  displayName: "discreteLaplace",
  budgetField: "epsilonPerAggregate",
  unit: "pureDp",
  sensitivity: "l1",
  parameterName: "scale",
  parameterFor: laplaceScaleFor,
  costFor: laplaceEpsilonFor,
  sample: sampleDiscreteLaplace,
  sampleMany: sampleDiscreteLaplaceMany,
  variance: discreteLaplaceVariance,
  tail: discreteLaplaceTail,
} as const);

/** erfc(x): series below 2, Lentz continued fraction above (≈1e-15 relative). @example erfc(3) // 2.209049699858544e-5 */
export function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    let sum = 0;
    let term = x;
    for (let n = 0; n < 100; n++) {
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
      term *= (-x * x) / (n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))
  let f = x;
  let C = x;
  let D = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    D = x + a * D;
    C = x + a / C;
    D = 1 / D;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** σ² up to which the Gaussian mechanism's `tail` sums the pmf exactly. */
export const GAUSSIAN_EXACT_TAIL_MAX = 1e6;

/**
 * Two-sided tail P(|X| > k) of the discrete Gaussian: the exact pmf sum up to σ² = 1e6, the
 * midpoint integral erfc((k + ½)/(σ√2)) beyond (relative error < 1e-6), so that it is fast
 * at any σ² (planning searches σ² up to 1e18).
 * @example discreteGaussianTailFast(2, rat(1)) // ≈ 0.0122
 */
export function discreteGaussianTailFast(k: number, sigma2: Rational): number {
  if (ratToNumber(sigma2) <= GAUSSIAN_EXACT_TAIL_MAX) return discreteGaussianTail(k, sigma2);
  if (!Number.isSafeInteger(k) || k < 0) invalid("k", "non-negative integer", k, "DP_PARAM_INVALID");
  return erfc((k + 0.5) / Math.sqrt(2 * ratToNumber(sigma2)));
}

export const discreteGaussian: NoiseMechanism = Object.freeze({
  templateName: "gaussian",
  displayName: "discreteGaussian",
  budgetField: "rhoPerAggregate",
  unit: "zCdp",
  sensitivity: "l2Squared",
  parameterName: "σ²",
  parameterFor: gaussianSigma2For,
  costFor: gaussianRhoFor,
  sample: sampleDiscreteGaussian,
  sampleMany: sampleDiscreteGaussianMany,
  variance: discreteGaussianVariance,
  tail: discreteGaussianTailFast,
} as const);

const registered: NoiseMechanism[] = [discreteLaplace, discreteGaussian];
let version = 0;

const NAME = /^[A-Za-z][A-Za-z0-9]{0,39}$/;
const FIELD = /^[A-Za-z][A-Za-z0-9]{0,63}$/;
const FUNCTIONS = ["parameterFor", "costFor", "sample", "sampleMany", "variance", "tail"] as const;

/**
 * Register a mechanism (names unique across template and display names); returns the
 * function that unregisters it. `DP_PARAM_INVALID` naming the field for a malformed one.
 *
 * @example
 * const off = registerMechanism({ ...discreteLaplace, templateName: "laplaceZcdp", displayName: "discreteLaplaceZcdp", ... });
 * try { ... } finally { off(); }
 */
export function registerMechanism(def: NoiseMechanism): () => void {
  if (!def || typeof def !== "object") invalid("mechanism", "a NoiseMechanism object", def, "DP_PARAM_INVALID");
  for (const k of ["templateName", "displayName"] as const)
    if (typeof def[k] !== "string" || !NAME.test(def[k]))
      invalid(`mechanism.${k}`, "an identifier [A-Za-z][A-Za-z0-9]* (≤ 40 chars)", def[k], "DP_PARAM_INVALID");
  if (typeof def.budgetField !== "string" || !FIELD.test(def.budgetField) || def.budgetField === "mechanism")
    invalid("mechanism.budgetField", "an identifier other than 'mechanism'", def.budgetField, "DP_PARAM_INVALID");
  if (def.unit !== "pureDp" && def.unit !== "zCdp") invalid("mechanism.unit", '"pureDp" | "zCdp"', def.unit, "DP_PARAM_INVALID");
  if (def.sensitivity !== "l1" && def.sensitivity !== "l2Squared")
    invalid("mechanism.sensitivity", '"l1" | "l2Squared"', def.sensitivity, "DP_PARAM_INVALID");
  if (typeof def.parameterName !== "string" || def.parameterName.length === 0 || def.parameterName.length > 16)
    invalid("mechanism.parameterName", "a short name (≤ 16 chars)", def.parameterName, "DP_PARAM_INVALID");
  for (const f of FUNCTIONS) if (typeof def[f] !== "function") invalid(`mechanism.${f}`, "a function", def[f], "DP_PARAM_INVALID");
  const names = new Set(registered.flatMap((m) => [m.templateName, m.displayName, "none"]));
  for (const k of ["templateName", "displayName"] as const)
    if (names.has(def[k])) invalid(`mechanism.${k}`, "a name no registered mechanism uses", def[k], "DP_PARAM_INVALID");
  if (def.templateName === def.displayName)
    invalid("mechanism.displayName", "a name different from templateName", def.displayName, "DP_PARAM_INVALID");
  const m: NoiseMechanism = Object.freeze({ ...def });
  registered.push(m);
  version++;
  return () => {
    const i = registered.indexOf(m);
    if (i >= 0) {
      registered.splice(i, 1);
      version++;
    }
  };
}

/** Every registered mechanism, built-ins first. */
export function mechanisms(): readonly NoiseMechanism[] {
  return [...registered];
}

/** Changes whenever the set of mechanisms changes (for caches such as the template schema). */
export function registryVersion(): number {
  return version;
}

/** The mechanism with this template or display name, or `undefined`. */
export function findMechanism(name: unknown): NoiseMechanism | undefined {
  return typeof name === "string" ? registered.find((m) => m.templateName === name || m.displayName === name) : undefined;
}

/**
 * The mechanism with this template or display name; `DP_PARAM_INVALID` naming `field` and
 * listing the registered template names otherwise.
 * @example mechanism("laplace").displayName // "discreteLaplace"
 */
export function mechanism(name: unknown, field = "mechanism"): NoiseMechanism {
  const m = findMechanism(name);
  if (!m) return invalid(field, `one of ${registered.map((x) => `"${x.templateName}"`).join(" | ")}`, name, "DP_PARAM_INVALID");
  return m;
}

/** The privacy cost of spending `amount` in the mechanism's accountant. @example costOf(discreteLaplace, rat(1, 2)) // { kind: "pureDp", epsilon: 1/2 } */
export function costOf(m: NoiseMechanism, amount: Rational): PrivacyCost {
  return m.unit === "pureDp" ? { kind: "pureDp", epsilon: amount } : { kind: "zCdp", rho: amount };
}

/** The sensitivity that calibrates `m`, picked from an `{ l1, l2Squared }` pair. */
export function sensitivityFor(m: NoiseMechanism, s: { l1: bigint; l2Squared: bigint }): bigint {
  return m.sensitivity === "l1" ? s.l1 : s.l2Squared;
}
