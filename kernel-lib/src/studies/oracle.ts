/**
 * The exact oracle — THE GOD'S-EYE VIEW THAT NO PARTY HAS.
 *
 * What it does: joins both parties' raw generated tables in the clear (normalised e-mail
 * as the key), and computes the fbpcs lift aggregates exactly, overall or per cohort of
 * advertiser dimensions. It exists for tests and for notebooks to compare a clean-room,
 * DP-noised release against the truth. It performs no PSI, applies no threshold, adds no
 * noise and enforces no purpose: never use it as a stand-in for the clean room.
 *
 * Definitions match the generator's ground truth (datasets/truth.ts): matched = advertiser
 * person whose normalised e-mail appears in the purchase file; conversion = purchase with
 * 0 ≤ purchase_day < campaignDays; reached* = conversions/value of reached test people.
 */
import { invalid } from "../errors.js";
import { normalizeStudyEmail } from "../datasets/emails.js";
import type { ExposureRow, PurchaseRow } from "../datasets/study.js";
import type { LiftAggregates } from "./lift.js";

export type OracleDimension = "region" | "age_band" | "channel";

export interface OracleOptions {
  /** Campaign window length (conversions are 0 ≤ purchase_day < campaignDays). Default 28. */
  campaignDays?: number;
  /** Group by these advertiser dimensions (default: one overall cohort). */
  by?: OracleDimension[];
  /** Cap on conversions per person before aggregation (fbpcs caps at 4). Default: no cap. */
  maxConversionsPerPerson?: number;
}

export interface OracleCohort {
  cohort: Record<string, string>;
  aggregates: Required<Omit<LiftAggregates, "testMatchCount">>;
}

/**
 * Exact fbpcs aggregates from the raw tables. Labelled: god's-eye view, for ground truth only.
 *
 * @example
 * const { exposures, purchases, groundTruth } = generateStudy({ seed: "s", advertiserRows: 20_000,
 *   overlap: 0.6, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 30 });
 * const [overall] = oracleLiftAggregates(exposures, purchases).cohorts;
 * computeLift(overall.aggregates).converters.ci?.relativeLift // covers groundTruth.truth.converters.relativeLift
 */
export function oracleLiftAggregates(exposures: readonly ExposureRow[], purchases: readonly PurchaseRow[], options: OracleOptions = {}) {
  if (!Array.isArray(exposures)) invalid("exposures", "array of exposure rows", exposures);
  if (!Array.isArray(purchases)) invalid("purchases", "array of purchase rows", purchases);
  const D = options.campaignDays ?? 28;
  if (!Number.isSafeInteger(D) || D < 1) invalid("options.campaignDays", "positive integer", D);
  const by = options.by ?? [];
  for (const [i, d] of by.entries())
    if (!["region", "age_band", "channel"].includes(d)) invalid(`options.by[${i}]`, "region | age_band | channel", d);
  const cap = options.maxConversionsPerPerson ?? Infinity;
  if (cap !== Infinity && (!Number.isSafeInteger(cap) || cap < 1)) invalid("options.maxConversionsPerPerson", "positive integer", cap);

  // per normalised e-mail: any purchase at all (matching), and campaign conversions/value
  const customer = new Map<string, { conv: Array<[number, number]> }>();
  for (const p of purchases) {
    const key = normalizeStudyEmail(p.email);
    let c = customer.get(key);
    if (!c) customer.set(key, (c = { conv: [] }));
    if (p.purchase_day >= 0 && p.purchase_day < D) c.conv.push([p.purchase_day, p.value_cents]);
  }
  const cohorts = new Map<string, OracleCohort>();
  const zero = () => ({
    testPopulation: 0,
    controlPopulation: 0,
    testConversions: 0,
    controlConversions: 0,
    testConverters: 0,
    controlConverters: 0,
    testValue: 0,
    controlValue: 0,
    testValueSquared: 0,
    controlValueSquared: 0,
    testNumConvSquared: 0,
    controlNumConvSquared: 0,
    reachedConversions: 0,
    reachedValue: 0,
  });
  let matched = 0;
  for (const e of exposures) {
    const c = customer.get(normalizeStudyEmail(e.email));
    if (!c) continue;
    matched++;
    const cohort: Record<string, string> = {};
    for (const d of by) cohort[d] = e[d];
    const id = JSON.stringify(cohort);
    let g = cohorts.get(id);
    if (!g) cohorts.set(id, (g = { cohort, aggregates: zero() }));
    // a cap keeps each person's earliest conversions (ties: lower value first)
    const kept = c.conv.length > cap ? [...c.conv].sort((x, y) => x[0] - y[0] || x[1] - y[1]).slice(0, cap) : c.conv;
    const k = kept.length;
    const value = kept.reduce((x, y) => x + y[1], 0);
    const A = g.aggregates;
    if (e.group === "test") {
      A.testPopulation++;
      A.testConversions += k;
      A.testConverters += k > 0 ? 1 : 0;
      A.testValue += value;
      A.testValueSquared += value * value;
      A.testNumConvSquared += k * k;
      if (e.reached === 1) {
        A.reachedConversions += k;
        A.reachedValue += value;
      }
    } else {
      A.controlPopulation++;
      A.controlConversions += k;
      A.controlConverters += k > 0 ? 1 : 0;
      A.controlValue += value;
      A.controlValueSquared += value * value;
      A.controlNumConvSquared += k * k;
    }
  }
  const list = [...cohorts.values()].sort((x, y) => (JSON.stringify(x.cohort) < JSON.stringify(y.cohort) ? -1 : 1));
  return { view: "god's-eye oracle (no party has this view)" as const, matchedPeople: matched, cohorts: list };
}
