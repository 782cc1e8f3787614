/**
 * The lift template: the clean-room query behind a Meta Private Lift–style study.
 *
 * Over the canonical study tables (CONTRACTS.md: advertiser `exposures` with join_key,
 * group, reached, impressions, first_exposure_day, region, age_band, channel; retailer
 * `purchases` with join_key, purchase_day, value_cents, store_region, category) it produces,
 * per group (test/control) and optional breakdown, the fbpcs LiftMetrics aggregates
 * (facebookresearch/fbpcs lift/common/LiftMetrics.h): population, conversions (purchases in
 * the attribution window, at most 4 per user as fbpcs caps/pads to 4 conversions),
 * converters, value and valueSquared (per-user value clamped to [0, valueCap] before
 * squaring). `studies/lift.ts` turns `toLiftAggregates(result)` into lift, incremental
 * conversions/value and confidence intervals (noise variances are passed along).
 * Default threshold: fbpcs k-anonymity 100.
 */
import type { QueryResult } from "../release.js";
import type { AnalysisRuleAggregation } from "../rules.js";
import type { DatasetSchema } from "../dataset.js";
import { decimalFromNumber, type TemplateInput, type ThresholdPreset } from "../template.js";

export type LiftBreakdown = "region" | "age_band" | "channel";

export interface LiftTemplateOptions {
  advertiser: string;
  retailer: string;
  exposures?: string;
  purchases?: string;
  breakdown?: LiftBreakdown;
  /** Per-user value cap in cents (clamp bound of value and valueSquared). Default 100 000. */
  valueCap?: number;
  /** Conversions counted per user (fbpcs: 4). */
  conversionCap?: number;
  threshold?: number | ThresholdPreset;
  style?: "drop" | "remainder" | "error";
  /** Laplace ε per aggregate: a decimal string, or a number (exactly `String(x)`: 0.1 is 1/10); omit for a threshold-only run. */
  epsilonPerAggregate?: string | number;
  /** Also release fbpcs `NumConvSquared` (Σ per-user conversions², one more noised aggregate). */
  numConvSquared?: boolean;
  /** Range of the attribution-window parameters `startDay` / `endDay`. */
  dayRange?: [number, number];
}

/**
 * Build the lift template (plain data; approve its hash with `TemplateRegistry.approve`).
 * Parameters at run time: `{ startDay, endDay }` — conversions are purchases with
 * startDay ≤ purchase_day ≤ endDay (after assignment; the holdout is randomised at day 0).
 *
 * @example
 * const t = liftTemplate({ advertiser: "adv", retailer: "shop", breakdown: "region", epsilonPerAggregate: "0.2" });
 * // run with params { startDay: 0, endDay: 27 }
 */
export function liftTemplate(o: LiftTemplateOptions): TemplateInput {
  const ex = o.exposures ?? "exposures";
  const pu = o.purchases ?? "purchases";
  const cap = o.valueCap ?? 100_000;
  const [lo, hi] = o.dayRange ?? [-365, 3650];
  return {
    version: 1,
    name: `lift${o.breakdown ? ` by ${o.breakdown}` : ""}`,
    base: { owner: o.advertiser, dataset: ex },
    events: { owner: o.retailer, dataset: pu, joinOn: "join_key", join: "left" },
    params: { startDay: { type: "int", min: lo, max: hi }, endDay: { type: "int", min: lo, max: hi } },
    filters: [
      { column: `${pu}.purchase_day`, op: "ge", value: { param: "startDay" } },
      { column: `${pu}.purchase_day`, op: "le", value: { param: "endDay" } },
    ],
    groupBy: [`${ex}.group`, ...(o.breakdown ? [`${ex}.${o.breakdown}`] : [])],
    contribution: { maxRowsPerUnit: o.conversionCap ?? 4, orderBy: [`${pu}.purchase_day`] },
    aggregates: [
      { name: "population", fn: "countUnits" },
      { name: "conversions", fn: "count" },
      { name: "converters", fn: "countUnitsWithRows" },
      { name: "value", fn: "sum", column: `${pu}.value_cents`, bounds: [0, cap] },
      { name: "valueSquared", fn: "sumSquares", column: `${pu}.value_cents`, bounds: [0, cap] },
      ...(o.numConvSquared ? [{ name: "numConvSquared", fn: "countSquares" as const }] : []),
    ],
    threshold: { minimum: o.threshold ?? "fbpcs_kanon", style: o.style ?? "drop" },
    ...(o.epsilonPerAggregate !== undefined && o.epsilonPerAggregate !== ""
      ? {
          noise: {
            mechanism: "laplace" as const,
            epsilonPerAggregate:
              typeof o.epsilonPerAggregate === "number" ? decimalFromNumber(o.epsilonPerAggregate) : o.epsilonPerAggregate,
          },
        }
      : {}),
  };
}

/** Schemas of the canonical study tables after PSI (join_key replaces email). */
export function liftSchemas(): { exposures: DatasetSchema; purchases: DatasetSchema } {
  return {
    exposures: {
      privacyUnit: "join_key",
      columns: {
        join_key: { type: "string" },
        group: { type: "enum", values: ["test", "control"] },
        reached: { type: "int", min: 0, max: 1 },
        impressions: { type: "int", min: 0 },
        first_exposure_day: { type: "int", min: -1 },
        region: { type: "enum", values: ["north", "south", "east", "west"] },
        age_band: { type: "enum", values: ["18-24", "25-34", "35-44", "45-54", "55+"] },
        channel: { type: "enum", values: ["search", "social", "video", "display"] },
      },
    },
    purchases: {
      privacyUnit: "join_key",
      columns: {
        join_key: { type: "string" },
        purchase_day: { type: "int" },
        value_cents: { type: "int", min: 0 },
        store_region: { type: "enum", values: ["north", "south", "east", "west"] },
        category: { type: "string" },
      },
    },
  };
}

/** Aggregation rules the two owners would set for a lift study (k = fbpcs 100 by default). */
export function liftRules(minimum = 100): { exposures: AnalysisRuleAggregation; purchases: AnalysisRuleAggregation } {
  const oc = [{ columnName: "join_key", minimum, type: "COUNT_DISTINCT" as const }];
  return {
    exposures: {
      type: "AGGREGATION",
      aggregateColumns: [{ columnNames: ["impressions"], function: "SUM" }],
      dimensionColumns: ["group", "region", "age_band", "channel", "reached"],
      joinColumns: ["join_key"],
      joinRequired: true,
      allowedJoinOperators: ["AND"],
      outputConstraints: oc,
    },
    purchases: {
      type: "AGGREGATION",
      aggregateColumns: [{ columnNames: ["value_cents"], function: "SUM" }],
      dimensionColumns: ["purchase_day", "store_region", "category"],
      joinColumns: ["join_key"],
      joinRequired: true,
      allowedJoinOperators: ["AND"],
      outputConstraints: oc,
    },
  };
}

/** fbpcs-named aggregates of one cohort, with the noise variance of each released sum. */
export interface LiftAggregates {
  /** Breakdown value, `"overall"` without breakdown, or `null` for a remainder row. */
  cohort: string | null;
  testPopulation: number | null;
  controlPopulation: number | null;
  testConversions: number | null;
  controlConversions: number | null;
  testConverters: number | null;
  controlConverters: number | null;
  testValue: number | null;
  controlValue: number | null;
  testValueSquared: number | null;
  controlValueSquared: number | null;
  /** Only when the template was built with `numConvSquared: true`. */
  testNumConvSquared: number | null;
  controlNumConvSquared: number | null;
  /** Per-arm noise variance of each metric (0 without noise). */
  noiseVariance: {
    population: number;
    conversions: number;
    converters: number;
    value: number;
    valueSquared: number;
    numConvSquared: number;
  };
  /** True when the test or control row of this cohort was suppressed (values null). */
  suppressed: boolean;
}

/**
 * Reshape a lift `QueryResult` into fbpcs-named per-cohort aggregates for studies/lift.ts.
 *
 * @example
 * toLiftAggregates(result)[0].testConversions
 */
export function toLiftAggregates(result: QueryResult): LiftAggregates[] {
  const bd = result.dimensions.find((d) => d !== "group");
  const v = (name: string) => {
    if (!result.noise) return 0;
    const key = name === "population" ? "units" : name;
    return result.noise.perAggregate.find((p) => p.name === key)?.variance ?? 0;
  };
  const cohorts = new Set<string | null>();
  const byKey = new Map<string, Record<string, string | number | null>>();
  for (const r of result.rows) {
    const c = bd ? (r[bd] as string | null) : "overall";
    if (r["group"] === null) continue; // remainder rows mix arms; not usable for lift
    cohorts.add(c);
    byKey.set(`${r["group"]}|${c}`, r);
  }
  for (const s of result.suppressed.rows) if (s.key["group"] !== null) cohorts.add(bd ? (s.key[bd] as string) : "overall");
  return [...cohorts].map((c) => {
    const t = byKey.get(`test|${c}`);
    const k = byKey.get(`control|${c}`);
    // a released integer beyond 2^53 arrives as a decimal string (release.ts `releasedInt`)
    const g = (r: typeof t, m: string) =>
      r && typeof r[m] === "number" ? (r[m] as number) : r && typeof r[m] === "string" ? Number(r[m]) : null;
    return {
      cohort: c,
      testPopulation: g(t, "population"),
      controlPopulation: g(k, "population"),
      testConversions: g(t, "conversions"),
      controlConversions: g(k, "conversions"),
      testConverters: g(t, "converters"),
      controlConverters: g(k, "converters"),
      testValue: g(t, "value"),
      controlValue: g(k, "value"),
      testValueSquared: g(t, "valueSquared"),
      controlValueSquared: g(k, "valueSquared"),
      testNumConvSquared: g(t, "numConvSquared"),
      controlNumConvSquared: g(k, "numConvSquared"),
      noiseVariance: {
        population: v("population"),
        conversions: v("conversions"),
        converters: v("converters"),
        value: v("value"),
        valueSquared: v("valueSquared"),
        numConvSquared: v("numConvSquared"),
      },
      suppressed: !t || !k,
    };
  });
}
