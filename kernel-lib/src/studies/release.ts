/**
 * From a clean-room lift release to lift estimates.
 *
 * What it does: takes the per-cohort, fbpcs-named aggregates the clean room released
 * (the shape `cleanroom/templates/lift.ts` `toLiftAggregates` returns: nullable values,
 * per-arm noise variance per metric, a `suppressed` flag) and runs `computeLift` on each
 * cohort, passing the noise variances through so every interval includes the DP noise.
 * Suppressed cohorts are reported as such, with no estimate — the clean room's decision
 * is final, this layer never reconstructs a suppressed value.
 *
 * The type is structural (declared here, not imported) so the two layers meet on names,
 * not on module paths.
 */
import { invalid } from "../errors.js";
import type { LiftAggregates as CleanroomLiftAggregates } from "../cleanroom/templates/lift.js";
import {
  computeLift,
  REQUIRED_LIFT_AGGREGATES,
  type LiftAggregates,
  type LiftAggregateName,
  type LiftOptions,
  type LiftResult,
} from "./lift.js";

/**
 * One released cohort as the clean room's lift template hands it over (`toLiftAggregates`):
 * fbpcs names, `null` when suppressed, and the noise variance of each per-arm aggregate.
 */
export type ReleasedLiftCohort = Omit<CleanroomLiftAggregates, "testNumConvSquared" | "controlNumConvSquared" | "noiseVariance"> &
  Partial<Pick<CleanroomLiftAggregates, "testNumConvSquared" | "controlNumConvSquared">> & {
    noiseVariance: Omit<CleanroomLiftAggregates["noiseVariance"], "numConvSquared"> & { numConvSquared?: number };
  };

const FIELDS = REQUIRED_LIFT_AGGREGATES;

export interface ReleasedLiftResult {
  kind: "liftStudy";
  cohorts: Array<{ cohort: string | null; suppressed: boolean; result: LiftResult | null }>;
  suppressedCohorts: number;
  flaggedCohorts: number;
}

/** Per-arm metric variances → the per-aggregate map `computeLift` takes. */
export function noiseVarianceByAggregate(v: ReleasedLiftCohort["noiseVariance"]): Partial<Record<LiftAggregateName, number>> {
  const out: Partial<Record<LiftAggregateName, number>> = {};
  const names = {
    population: "Population",
    conversions: "Conversions",
    converters: "Converters",
    value: "Value",
    valueSquared: "ValueSquared",
  } as const;
  for (const [k, suffix] of Object.entries(names) as [keyof typeof names, string][]) {
    const x = v[k];
    if (typeof x !== "number" || !Number.isFinite(x) || x < 0) invalid(`noiseVariance.${k}`, "finite number ≥ 0", x);
    out[`test${suffix}` as LiftAggregateName] = x;
    out[`control${suffix}` as LiftAggregateName] = x;
  }
  return out;
}

/**
 * Lift estimates for every released cohort; suppressed cohorts carry `result: null`.
 *
 * @example
 * const released = toLiftAggregates(queryResult);        // cleanroom/templates/lift.ts
 * const study = liftFromRelease(released, { threshold: 100 });
 * study.cohorts[0].result?.converters.ci?.relativeLift    // includes DP noise variance
 */
export function liftFromRelease(
  cohorts: readonly ReleasedLiftCohort[],
  options: Omit<LiftOptions, "noiseVariance"> = {},
): ReleasedLiftResult {
  if (!Array.isArray(cohorts)) invalid("cohorts", "array of released lift cohorts", cohorts);
  const out = cohorts.map((c, i) => {
    if (typeof c !== "object" || c === null) invalid(`cohorts[${i}]`, "released lift cohort", c);
    const values = Object.fromEntries(FIELDS.map((f) => [f, c[f]]));
    if (c.suppressed || FIELDS.some((f) => c[f] === null)) return { cohort: c.cohort, suppressed: true, result: null };
    const result = computeLift(values as unknown as LiftAggregates, {
      ...options,
      noiseVariance: noiseVarianceByAggregate(c.noiseVariance),
    });
    return { cohort: c.cohort, suppressed: false, result };
  });
  return {
    kind: "liftStudy",
    cohorts: out,
    suppressedCohorts: out.filter((c) => c.suppressed).length,
    flaggedCohorts: out.filter((c) => c.result?.belowThreshold).length,
  };
}
