/**
 * Lift study maths on fbpcs Private Lift aggregates (LiftMetrics.h names), with confidence
 * intervals that include the differential-privacy noise variance.
 *
 * What it does: from per-arm aggregates (population, conversions, converters, value and
 * their squares), possibly released with noise, computes for three outcomes — converter
 * rate ("conversion rate"), conversions per person and value per person — the test and
 * control means, absolute lift, relative lift and incremental total (control scaled to the
 * test population: `I = S_test − N_test · S_control / N_control`), with delta-method
 * confidence intervals whose variance is
 *   sampling variance (Neyman, per-arm sample variance from the squared sums)
 * + noise variance (first-order delta method through every noisy aggregate, from the
 *   per-aggregate noise variances the release reports).
 * It reports the noise share of the variance, so a notebook can show how much of the
 * interval's width the privacy protection costs. Relative lift gets two intervals: the
 * linear delta method on the ratio, and the delta method on log(test/control) mapped back
 * (asymmetric, better behaved when the control arm is small).
 *
 * Estimand: intent-to-treat among matched people — test (reached or not) vs control.
 * Cohorts whose test or control population is below the threshold k (fbpcs default 100)
 * are flagged, not hidden: the clean room has already applied its own suppression.
 *
 * Approximations (stated, not hidden): normal sampling distributions; noise in the
 * squared sums is ignored (it only perturbs the variance estimate); noisy populations are
 * treated as fixed in the sampling part. Spec: fbpcs lift game output; Neyman (1923);
 * delta method (e.g. Casella & Berger §5.5.4).
 */
import { invalid } from "../errors.js";
import { normalQuantile } from "./normal.js";

/** fbpcs-named per-arm aggregates over matched people. Values may be noisy (any finite number). */
export interface LiftAggregates {
  testPopulation: number;
  controlPopulation: number;
  testConversions: number;
  controlConversions: number;
  testConverters: number;
  controlConverters: number;
  testValue: number;
  controlValue: number;
  testValueSquared: number;
  controlValueSquared: number;
  /** Σ conversions² per person; without it the conversions CI is null. */
  testNumConvSquared?: number;
  controlNumConvSquared?: number;
  testMatchCount?: number;
  reachedConversions?: number;
  reachedValue?: number;
}

export type LiftAggregateName = keyof LiftAggregates;

/** The aggregates every lift computation needs (fbpcs LiftMetrics names). */
export const REQUIRED_LIFT_AGGREGATES: readonly LiftAggregateName[] = [
  "testPopulation",
  "controlPopulation",
  "testConversions",
  "controlConversions",
  "testConverters",
  "controlConverters",
  "testValue",
  "controlValue",
  "testValueSquared",
  "controlValueSquared",
];
const OPTIONAL: LiftAggregateName[] = [
  "testNumConvSquared",
  "controlNumConvSquared",
  "testMatchCount",
  "reachedConversions",
  "reachedValue",
];

export interface LiftOptions {
  /** Variance of the noise added to each aggregate (0 or absent = exact). */
  noiseVariance?: Partial<Record<LiftAggregateName, number>>;
  /** Two-sided confidence level, default 0.95. */
  confidence?: number;
  /** Minimum population per arm (k-anonymity threshold), default 100 (fbpcs). */
  threshold?: number;
}

export interface VarianceParts {
  sampling: number;
  noise: number;
  total: number;
  /** noise / total (0 when exact). */
  noiseShare: number;
}

export interface LiftEstimate {
  /** Per-person mean in the test arm (a rate for converters). */
  test: number | null;
  control: number | null;
  /** test − control. */
  absoluteLift: number | null;
  /** test / control − 1. */
  relativeLift: number | null;
  /** test total minus control total scaled to the test population. */
  incremental: number | null;
  ci: {
    absoluteLift: [number, number];
    /** Delta method on the ratio (symmetric). */
    relativeLift: [number, number] | null;
    /** Delta method on log(test/control), mapped back (asymmetric; better when the control arm is small). */
    relativeLiftLog: [number, number] | null;
    incremental: [number, number];
  } | null;
  variance: { absoluteLift: VarianceParts; relativeLift: VarianceParts | null; incremental: VarianceParts } | null;
}

export interface LiftFlag {
  field: LiftAggregateName;
  value: number;
  threshold: number;
  reason: string;
}

export interface LiftResult {
  kind: "lift";
  estimand: "intent-to-treat among matched people (test vs control)";
  confidence: number;
  z: number;
  testPopulation: number;
  controlPopulation: number;
  /** testPopulation / controlPopulation: the factor applied to control totals. */
  populationScale: number | null;
  /** Converter rate (share of people with ≥ 1 conversion): the headline "conversion rate". */
  converters: LiftEstimate;
  /** Conversions per person. */
  conversions: LiftEstimate;
  /** Value per person (same unit as the value aggregates). */
  value: LiftEstimate;
  reached: { reachedConversions: number; reachedValue: number | null; shareOfTestConversions: number | null } | null;
  belowThreshold: boolean;
  flags: LiftFlag[];
  notes: string[];
}

interface Arm {
  n: number;
  s: number;
  q: number | undefined;
  vN: number;
  vS: number;
}

const parts = (sampling: number, noise: number): VarianceParts => {
  const total = sampling + noise;
  return { sampling, noise, total, noiseShare: total > 0 ? noise / total : 0 };
};

function estimate(t: Arm, c: Arm, z: number, binary: boolean): LiftEstimate {
  const empty: LiftEstimate = {
    test: null,
    control: null,
    absoluteLift: null,
    relativeLift: null,
    incremental: null,
    ci: null,
    variance: null,
  };
  if (!(t.n > 1 && c.n > 1)) return empty;
  const mt = t.s / t.n;
  const mc = c.s / c.n;
  const rel = mc !== 0 ? mt / mc - 1 : null;
  const incremental = t.s - t.n * mc;
  const point = { ...empty, test: mt, control: mc, absoluteLift: mt - mc, relativeLift: rel, incremental };
  // per-person sample variance; binary outcomes have q = s
  const sampleVar = (a: Arm, m: number) => {
    const q = binary ? a.s : a.q;
    if (q === undefined) return undefined;
    return Math.max(0, (q - a.n * m * m) / (a.n - 1));
  };
  const st = sampleVar(t, mt);
  const sc = sampleVar(c, mc);
  if (st === undefined || sc === undefined) return point;
  const sampT = st / t.n;
  const sampC = sc / c.n;
  const noiseT = (t.vS + mt * mt * t.vN) / (t.n * t.n);
  const noiseC = (c.vS + mc * mc * c.vN) / (c.n * c.n);
  const abs = parts(sampT + sampC, noiseT + noiseC);
  const incr = parts(t.n * st + t.n * t.n * sampC, t.vS + mc * mc * t.vN + t.n * t.n * noiseC);
  const relV = mc !== 0 ? parts(sampT / (mc * mc) + (mt * mt * sampC) / mc ** 4, noiseT / (mc * mc) + (mt * mt * noiseC) / mc ** 4) : null;
  const band = (x: number, v: VarianceParts): [number, number] => [x - z * Math.sqrt(v.total), x + z * Math.sqrt(v.total)];
  let relLog: [number, number] | null = null;
  if (mt > 0 && mc > 0) {
    const sd = Math.sqrt((sampT + noiseT) / (mt * mt) + (sampC + noiseC) / (mc * mc));
    const l = Math.log(mt / mc);
    relLog = [Math.exp(l - z * sd) - 1, Math.exp(l + z * sd) - 1];
  }
  return {
    ...point,
    ci: {
      absoluteLift: band(mt - mc, abs),
      relativeLift: rel !== null && relV ? band(rel, relV) : null,
      relativeLiftLog: relLog,
      incremental: band(incremental, incr),
    },
    variance: { absoluteLift: abs, relativeLift: relV, incremental: incr },
  };
}

/**
 * Lift of one cohort from fbpcs-named aggregates, with DP-aware confidence intervals.
 * Throws `PARAM_INVALID` naming the field on malformed input.
 *
 * @example
 * const r = computeLift(
 *   { testPopulation: 8000, controlPopulation: 2000, testConversions: 1100, controlConversions: 230,
 *     testConverters: 960, controlConverters: 200, testValue: 4.9e6, controlValue: 1.0e6,
 *     testValueSquared: 7.1e10, controlValueSquared: 1.4e10 },
 *   { noiseVariance: { testConverters: 200, controlConverters: 200 } });
 * r.converters.relativeLift  // 0.2
 * r.converters.ci?.relativeLift // [low, high], widened by the noise
 * r.converters.variance?.relativeLift?.noiseShare // share of the variance due to noise
 */
export function computeLift(aggregates: LiftAggregates, options: LiftOptions = {}): LiftResult {
  if (typeof aggregates !== "object" || aggregates === null) invalid("aggregates", "object of fbpcs aggregates", aggregates);
  if (typeof options !== "object" || options === null) invalid("options", "object", options);
  for (const k of Object.keys(aggregates))
    if (!REQUIRED_LIFT_AGGREGATES.includes(k as LiftAggregateName) && !OPTIONAL.includes(k as LiftAggregateName))
      invalid(`aggregates.${k}`, `one of ${[...REQUIRED_LIFT_AGGREGATES, ...OPTIONAL].join(", ")}`, k);
  for (const k of REQUIRED_LIFT_AGGREGATES)
    if (typeof aggregates[k] !== "number" || !Number.isFinite(aggregates[k])) invalid(`aggregates.${k}`, "finite number", aggregates[k]);
  for (const k of OPTIONAL)
    if (aggregates[k] !== undefined && (typeof aggregates[k] !== "number" || !Number.isFinite(aggregates[k])))
      invalid(`aggregates.${k}`, "finite number or absent", aggregates[k]);
  const nv = options.noiseVariance ?? {};
  if (typeof nv !== "object" || nv === null) invalid("options.noiseVariance", "object of variances", nv);
  for (const [k, v] of Object.entries(nv)) {
    if (!REQUIRED_LIFT_AGGREGATES.includes(k as LiftAggregateName) && !OPTIONAL.includes(k as LiftAggregateName))
      invalid(`options.noiseVariance.${k}`, "an aggregate name", k);
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) invalid(`options.noiseVariance.${k}`, "finite number ≥ 0", v);
  }
  const confidence = options.confidence ?? 0.95;
  if (typeof confidence !== "number" || !(confidence > 0 && confidence < 1)) invalid("options.confidence", "number in (0, 1)", confidence);
  const threshold = options.threshold ?? 100;
  if (!Number.isSafeInteger(threshold) || threshold < 0) invalid("options.threshold", "integer ≥ 0", threshold);

  const a = aggregates;
  const v = (k: LiftAggregateName) => nv[k] ?? 0;
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const arm = (n: LiftAggregateName, s: LiftAggregateName, q: LiftAggregateName | undefined): Arm => ({
    n: a[n] as number,
    s: a[s] as number,
    q: q === undefined ? undefined : a[q],
    vN: v(n),
    vS: v(s),
  });
  const notes: string[] = [];
  const flags: LiftFlag[] = [];
  for (const f of ["testPopulation", "controlPopulation"] as const)
    if (a[f] < threshold) flags.push({ field: f, value: a[f], threshold, reason: `${f} below the k-anonymity threshold` });
  if (!(a.testPopulation > 1 && a.controlPopulation > 1)) notes.push("a population is ≤ 1: no estimate");
  if (a.testNumConvSquared === undefined || a.controlNumConvSquared === undefined)
    notes.push("testNumConvSquared/controlNumConvSquared absent: no confidence interval for conversions per person");
  if (Object.values(nv).some((x) => x > 0)) notes.push("intervals include DP noise variance (first-order delta method)");
  const converters = estimate(
    arm("testPopulation", "testConverters", undefined),
    arm("controlPopulation", "controlConverters", undefined),
    z,
    true,
  );
  const conversions = estimate(
    arm("testPopulation", "testConversions", "testNumConvSquared"),
    arm("controlPopulation", "controlConversions", "controlNumConvSquared"),
    z,
    false,
  );
  const value = estimate(
    arm("testPopulation", "testValue", "testValueSquared"),
    arm("controlPopulation", "controlValue", "controlValueSquared"),
    z,
    false,
  );
  if (converters.control === 0) notes.push("control converter rate is 0: relative lift undefined");
  for (const [arm, n] of [
    ["test", a.testPopulation],
    ["control", a.controlPopulation],
  ] as const) {
    if (!(n > 1)) continue;
    const inconsistent = (sq: number | undefined, s: number) => sq !== undefined && sq < (s * s) / n;
    if (inconsistent(a[`${arm}ValueSquared`], a[`${arm}Value`]))
      notes.push(
        `${arm}ValueSquared < ${arm}Value²/${arm}Population (noise?): ${arm} value sampling variance floored at 0, interval too narrow`,
      );
    if (inconsistent(a[`${arm}NumConvSquared`], a[`${arm}Conversions`]))
      notes.push(`${arm}NumConvSquared < ${arm}Conversions²/${arm}Population (noise?): sampling variance floored at 0`);
  }
  return {
    kind: "lift",
    estimand: "intent-to-treat among matched people (test vs control)",
    confidence,
    z,
    testPopulation: a.testPopulation,
    controlPopulation: a.controlPopulation,
    populationScale: a.controlPopulation > 0 ? a.testPopulation / a.controlPopulation : null,
    converters,
    conversions,
    value,
    reached:
      a.reachedConversions === undefined
        ? null
        : {
            reachedConversions: a.reachedConversions,
            reachedValue: a.reachedValue ?? null,
            shareOfTestConversions: a.testConversions > 0 ? a.reachedConversions / a.testConversions : null,
          },
    belowThreshold: flags.length > 0,
    flags,
    notes,
  };
}

export interface LiftCohort {
  /** Dimension values of the cohort, e.g. `{ channel: "search" }`. */
  cohort: Record<string, string | number>;
  aggregates: LiftAggregates;
  /** Per-cohort noise variances (default: options.noiseVariance). */
  noiseVariance?: LiftOptions["noiseVariance"];
}

/**
 * Lift for each cohort of a grouped release (fbpcs `GroupedLiftMetrics`), flagging cohorts
 * below the threshold.
 *
 * @example
 * const g = computeGroupedLift([{ cohort: { channel: "search" }, aggregates: a1 }, { cohort: { channel: "video" }, aggregates: a2 }]);
 * g.cohorts.filter((c) => c.result.belowThreshold)
 */
export function computeGroupedLift(cohorts: readonly LiftCohort[], options: LiftOptions = {}) {
  if (!Array.isArray(cohorts)) invalid("cohorts", "array of { cohort, aggregates }", cohorts);
  const out = cohorts.map((c, i) => {
    if (typeof c !== "object" || c === null || typeof c.cohort !== "object" || c.cohort === null)
      invalid(`cohorts[${i}].cohort`, "object of dimension values", c?.cohort);
    return {
      cohort: { ...c.cohort },
      result: computeLift(c.aggregates, { ...options, noiseVariance: c.noiseVariance ?? options.noiseVariance }),
    };
  });
  return { kind: "groupedLift" as const, cohorts: out, flaggedCohorts: out.filter((c) => c.result.belowThreshold).length };
}
