/**
 * Contribution bounding and fixed-point releases: from declared bounds to sensitivity to
 * noise, for counts and real-valued sums.
 *
 * Where it is used: `countSensitivity` / `sumSensitivity` are the sensitivity math of the
 * clean room (cleanroom/template.ts `noiseQuantities` derives every noised quantity's L1 and
 * squared L2 from them); the release then samples through the mechanism registry
 * (registry.ts). `releaseInteger` and `noisySumFixedPoint` are the standalone single-release
 * API (tests, benchmarks, notebooks) over the same registry: the template path does not
 * call them, it releases integer aggregates itself (cleanroom/release.ts).
 *
 * The privacy unit (a person, a join key) may appear in many rows and many groups. The
 * clean-room engine enforces the bounds (drop rows beyond `maxRowsPerGroupPerUnit`, groups
 * beyond `maxGroupsPerUnit`, clamp values to `[lower, upper]`); this module is the pure math
 * that turns those bounds into L1 / squared-L2 sensitivity (Tumult's `MaxGroupsPerID` ×
 * `MaxRowsPerGroupPerID`, PipelineDP's `max_partitions_contributed` ×
 * `max_contributions_per_partition`), and the noisy release itself.
 *
 * Real-valued sums (Mironov 2012; OpenDP's fixed-point sums): each value is snapped to a
 * declared grid (e.g. 0.01), turned into an integer number of grid steps, clamped in
 * integers, summed exactly in bigint, and released as integer + discrete noise, i.e. on the
 * grid. Snapping data to the grid is not privacy-relevant (the clamp is done on the integer
 * after snapping, so the per-unit bound holds whatever the float rounding did); the noise is
 * exact.
 */
import type { Rng } from "../rng.js";
import { rngStamp, type RngStamp } from "../rng.js";
import { invalid } from "../errors.js";
import { type Rational, type RationalLike, ratFrom, ratToNumber, ratToDecimal, ratMul, rat, ratDiv, ratCompare } from "./rational.js";
import { type PrivacyCost, checkParam, costToJson, type PrivacyCostJson } from "./accountant.js";
import { costOf, mechanism, sensitivityFor, type NoiseMechanism } from "./registry.js";

/** Declared per-unit contribution bounds of one query. */
export interface ContributionBounds {
  /** Each unit contributes to at most this many output groups (cells). */
  maxGroupsPerUnit: number;
  /** …and to at most this many rows inside each group. */
  maxRowsPerGroupPerUnit: number;
}

/** L1 and squared-L2 sensitivity (integers, in grid units for sums). */
export interface Sensitivity {
  l1: bigint;
  l2Squared: bigint;
}

/**
 * Noise for a release, for the whole query: `kind` names a registered mechanism (template or
 * display name, e.g. "laplace"), with its budget as `epsilon` (pure-DP mechanisms) or `rho`
 * (zCDP mechanisms).
 */
export type NoiseSpec =
  | { kind: "laplace"; epsilon: RationalLike }
  | { kind: "gaussian"; rho: RationalLike }
  | { kind: string; epsilon?: RationalLike; rho?: RationalLike };

function specOf(noise: NoiseSpec): { m: NoiseMechanism; budget: Rational } {
  const m = mechanism((noise as { kind?: unknown })?.kind, "noise.kind");
  const field = m.unit === "pureDp" ? "epsilon" : "rho";
  return { m, budget: checkParam((noise as Record<string, RationalLike>)[field]!, `noise.${field}`) };
}

function boundInt(x: number, field: string, max = 1e6): bigint {
  if (!Number.isSafeInteger(x) || x < 1 || x > max) invalid(field, `integer in [1, ${max}]`, x, "DP_PARAM_INVALID");
  return BigInt(x);
}

/**
 * Sensitivity of a (group-by) count under bounds g groups × r rows: L1 = g·r, L2² = g·r².
 * @example countSensitivity({ maxGroupsPerUnit: 1, maxRowsPerGroupPerUnit: 1 }) // { l1: 1n, l2Squared: 1n }
 */
export function countSensitivity(b: ContributionBounds): Sensitivity {
  const g = boundInt(b?.maxGroupsPerUnit, "maxGroupsPerUnit");
  const r = boundInt(b?.maxRowsPerGroupPerUnit, "maxRowsPerGroupPerUnit");
  return { l1: g * r, l2Squared: g * r * r };
}

/**
 * Sensitivity of a (group-by) sum of values clamped to [lowerUnits, upperUnits] grid steps,
 * under add/remove-one-unit neighbours: per row c = max(|lower|, |upper|), L1 = g·r·c,
 * L2² = g·(r·c)².
 * @example sumSensitivity({ maxGroupsPerUnit: 2, maxRowsPerGroupPerUnit: 1 }, 0n, 500n) // { l1: 1000n, l2Squared: 500000n }
 */
export function sumSensitivity(b: ContributionBounds, lowerUnits: bigint, upperUnits: bigint): Sensitivity {
  const { l1, l2Squared } = countSensitivity(b);
  if (typeof lowerUnits !== "bigint" || typeof upperUnits !== "bigint" || lowerUnits > upperUnits)
    invalid("bounds", "bigint lower ≤ upper (grid units)", lowerUnits, "DP_PARAM_INVALID");
  const abs = (x: bigint) => (x < 0n ? -x : x);
  const c = abs(lowerUnits) > abs(upperUnits) ? abs(lowerUnits) : abs(upperUnits);
  if (c === 0n) invalid("bounds", "a clamping range other than [0, 0]", 0, "DP_PARAM_INVALID");
  return { l1: l1 * c, l2Squared: l2Squared * c * c };
}

/**
 * The privacy cost of releasing a query with `noise` (known before running).
 * @example costOfNoise({ kind: "laplace", epsilon: "0.5" }) // { kind: "pureDp", epsilon: 1/2 }
 */
export function costOfNoise(noise: NoiseSpec): PrivacyCost {
  const { m, budget } = specOf(noise);
  return costOf(m, budget);
}

/**
 * The noise parameter (e.g. Laplace scale or Gaussian σ², in integer units) achieving `noise` at sensitivity `s`.
 * @example noiseParameter({ kind: "laplace", epsilon: "0.5" }, { l1: 2n, l2Squared: 4n }) // { kind: "laplace", scale: 4 }
 */
export function noiseParameter(noise: NoiseSpec, s: Sensitivity): { kind: string; mechanism: NoiseMechanism; scale: Rational } {
  const { m, budget } = specOf(noise);
  return { kind: m.templateName, mechanism: m, scale: m.parameterFor(budget, sensitivityFor(m, s)) };
}

/** An integer release (JSON-able). */
export interface IntegerRelease extends RngStamp {
  /** Noisy value as a decimal integer string (exact). */
  value: string;
  /** Noise variance in output units (for confidence intervals). */
  noiseVariance: number;
  cost: PrivacyCostJson;
  /** Display name of the mechanism, e.g. "discreteLaplace". */
  mechanism: string;
  /** Noise parameter as exact text: e.g. Laplace scale or Gaussian σ². */
  noiseParameter: string;
}

/**
 * Add exact discrete noise to an exact integer aggregate (a count, or a sum in grid units).
 * @example releaseInteger(1234n, { kind: "laplace", epsilon: "1" }, { l1: 1n, l2Squared: 1n }, rng).value // e.g. "1236"
 */
export function releaseInteger(exact: bigint | number, noise: NoiseSpec, s: Sensitivity, rng: Rng): IntegerRelease {
  const x = typeof exact === "number" && Number.isSafeInteger(exact) ? BigInt(exact) : exact;
  if (typeof x !== "bigint") return invalid("exact", "integer aggregate (bigint or safe integer)", exact, "DP_PARAM_INVALID");
  const p = noiseParameter(noise, s);
  const cost = costToJson(costOfNoise(noise));
  const n = p.mechanism.sample(p.scale, rng);
  return {
    value: (x + n).toString(),
    noiseVariance: p.mechanism.variance(p.scale),
    cost,
    mechanism: p.mechanism.displayName,
    noiseParameter: ratToDecimal(p.scale, 9),
    ...rngStamp(rng),
  };
}

/**
 * Snap a value to the grid (nearest multiple of `grid`) and clamp in grid units.
 * @example toGridUnits(12.345, rat(1, 100), -1000n, 1000n) // 1235n (or 1234n: data rounding is not privacy-relevant)
 */
export function toGridUnits(value: number, grid: Rational, lowerUnits: bigint, upperUnits: bigint): bigint {
  if (typeof value !== "number" || Number.isNaN(value)) return invalid("value", "number", value, "DP_PARAM_INVALID");
  const g = ratToNumber(grid);
  const q = value / g;
  if (q >= Number(upperUnits)) return upperUnits;
  if (q <= Number(lowerUnits)) return lowerUnits;
  const u = BigInt(Math.round(q));
  return u < lowerUnits ? lowerUnits : u > upperUnits ? upperUnits : u;
}

/** Options of `noisySumFixedPoint`. */
export interface FixedPointSumOptions {
  /** Clamping bounds in real units ("0", "500.00"); both must lie on the grid. */
  lower: RationalLike;
  upper: RationalLike;
  /** Release grid, e.g. "0.01". */
  grid: RationalLike;
  noise: NoiseSpec;
  /** Bounds the engine enforced (default 1 group, 1 row: `values` are per-unit totals). */
  bounds?: ContributionBounds;
}

/** A fixed-point sum release (JSON-able). */
export interface FixedPointRelease extends IntegerRelease {
  /** Noisy sum in grid units (exact integer string). */
  units: string;
  /** Noisy sum on the grid as decimal text, e.g. "1234.56". */
  valueText: string;
  /** Noisy sum as a JS number (display / downstream statistics). */
  valueNumber: number;
  grid: string;
}

/**
 * Clamp each unit's contribution to [lower, upper], accumulate exactly in fixed point on
 * `grid`, add discrete noise calibrated to the clamp, release on the grid.
 * @example
 * noisySumFixedPoint(
 *   [12.5, 99.99, 1e9],
 *   { lower: "0", upper: "100", grid: "0.01", noise: { kind: "laplace", epsilon: "1" } },
 *   rng,
 * ).valueText // ≈ "212.49" ± 100/ε
 */
export function noisySumFixedPoint(values: ArrayLike<number>, opts: FixedPointSumOptions, rng: Rng): FixedPointRelease {
  if (!values || typeof values.length !== "number") invalid("values", "array of numbers", values, "DP_PARAM_INVALID");
  const grid = ratFrom(opts?.grid, "grid");
  if (grid.num <= 0n) invalid("grid", "positive rational", ratToNumber(grid), "DP_PARAM_INVALID");
  const lo = ratDiv(ratFrom(opts.lower, "lower"), grid);
  const hi = ratDiv(ratFrom(opts.upper, "upper"), grid);
  if (lo.den !== 1n)
    invalid("lower", `a multiple of the grid ${ratToDecimal(grid, 12)}`, ratToNumber(ratMul(lo, grid)), "DP_PARAM_INVALID");
  if (hi.den !== 1n)
    invalid("upper", `a multiple of the grid ${ratToDecimal(grid, 12)}`, ratToNumber(ratMul(hi, grid)), "DP_PARAM_INVALID");
  if (ratCompare(lo, hi) > 0) invalid("upper", "≥ lower", ratToNumber(ratMul(hi, grid)), "DP_PARAM_INVALID");
  const s = sumSensitivity(opts.bounds ?? { maxGroupsPerUnit: 1, maxRowsPerGroupPerUnit: 1 }, lo.num, hi.num);
  costOfNoise(opts.noise); // validate before touching data
  // exact accumulation: safe-integer partial sums flushed into a bigint
  let total = 0n;
  const loN = Number(lo.num);
  const hiN = Number(hi.num);
  if (Math.max(Math.abs(loN), Math.abs(hiN)) < 2 ** 50) {
    const g = ratToNumber(grid);
    let partial = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (typeof v !== "number" || v !== v) invalid(`values[${i}]`, "number", v, "DP_PARAM_INVALID");
      const q = v / g;
      partial += q >= hiN ? hiN : q <= loN ? loN : Math.round(q);
      if (partial >= 2 ** 52 || partial <= -(2 ** 52)) {
        total += BigInt(partial);
        partial = 0;
      }
    }
    total += BigInt(partial);
  } else {
    for (let i = 0; i < values.length; i++) total += toGridUnits(values[i]!, grid, lo.num, hi.num);
  }
  const rel = releaseInteger(total, opts.noise, s, rng);
  const unitsNoisy = BigInt(rel.value);
  const real = ratMul(rat(unitsNoisy), grid);
  const g2 = ratToNumber(grid) ** 2;
  return {
    ...rel,
    noiseVariance: rel.noiseVariance * g2,
    units: rel.value,
    value: ratToDecimal(real, 12),
    valueText: ratToDecimal(real, 12),
    valueNumber: ratToNumber(real),
    grid: ratToDecimal(grid, 12),
  };
}
