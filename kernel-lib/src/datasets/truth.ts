/**
 * Ground truth of a generated study: what the generator knows and no party does.
 *
 * Three layers of truth, from most to least concrete:
 * - `aggregates`: the exact fbpcs-named aggregates over matched people (people in both
 *   files), i.e. what a perfect, noise-free clean room would compute;
 * - `truth`: the finite-population causal effect among matched people, from both potential
 *   outcomes of every person (had everyone been in test vs in control) — the estimand an
 *   intent-to-treat lift estimate targets;
 * - `expected`: the super-population expectation implied by the parameters.
 *
 * Conversions are purchases with `0 ≤ purchase_day < campaignDays`; a converter is a
 * person with at least one. Value is the sum of `value_cents` of conversions.
 */
import type { ExpectedTruth, ResolvedStudyParams } from "./params.js";
import type { RngStamp } from "../rng.js";

/** fbpcs Private Lift aggregate names (LiftMetrics.h), over matched people. */
export interface StudyAggregates {
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
  testNumConvSquared: number;
  controlNumConvSquared: number;
  reachedConversions: number;
  reachedValue: number;
}

export interface CausalTruth {
  /** Mean per matched person had everyone been assigned to test. */
  ifAllTest: number;
  /** Mean per matched person had everyone been assigned to control. */
  ifAllControl: number;
  absoluteLift: number;
  /** ifAllTest / ifAllControl − 1: the true intent-to-treat relative lift. */
  relativeLift: number;
}

export interface GroundTruth {
  generator: string;
  generatorVersion: string;
  seed: string;
  /** The data come from a seeded stream: reproducible, and not private. */
  rngStamp: RngStamp;
  params: ResolvedStudyParams;
  definitions: Record<string, string>;
  counts: {
    advertiserPeople: number;
    exposureRows: number;
    retailerCustomers: number;
    retailerOnlyCustomers: number;
    purchaseRows: number;
    /** People present in both files (after normalisation). */
    trueOverlap: number;
    testPeople: number;
    controlPeople: number;
    reachedPeople: number;
    reachShareOfTest: number;
    messyExposureEmailShare: number;
    messyPurchaseEmailShare: number;
  };
  aggregates: StudyAggregates;
  truth: {
    converters: CausalTruth;
    conversions: CausalTruth;
    valueCents: CausalTruth;
    /** Observed rates among matched people in each arm (what the data show). */
    observed: { testConversionRate: number; controlConversionRate: number };
    /** Exact causal effect inside the realised test group: treated minus untreated outcomes. */
    incrementalInTestGroup: { converters: number; conversions: number; valueCents: number };
    /** Converter truth per advertiser dimension value (finite population, matched people of that cohort). */
    convertersByDimension: Record<"region" | "age_band" | "channel", Record<string, CausalTruth & { matchedPeople: number }>>;
  };
  expected: ExpectedTruth;
}

interface MatchedPerson {
  /** Dimension values of the person (for per-cohort truth). */
  dims: { region: string; age_band: string; channel: string };
  isTest: boolean;
  reached: boolean;
  conv0: number;
  value0: number;
  conv1: number;
  value1: number;
}

/** Internal accumulator used by the generator (constant memory). */
export function newGroundTruthAccumulator() {
  const z = () => ({ n: 0, conv: 0, converters: 0, value: 0, value2: 0, conv2: 0 });
  const arm = { test: z(), control: z() };
  const po = { c0: 0, c1: 0, k0: 0, k1: 0, v0: 0, v1: 0, n: 0 };
  const incr = { converters: 0, conversions: 0, value: 0 };
  const byDim: Record<string, Record<string, { n: number; c0: number; c1: number }>> = { region: {}, age_band: {}, channel: {} };
  let reachedConversions = 0;
  let reachedValue = 0;
  const acc = {
    advertiserPeople: 0,
    retailerCustomers: 0,
    purchaseRows: 0,
    testPeople: 0,
    reachedPeople: 0,
    messyExposureEmails: 0,
    messyPurchaseEmails: 0,
    addMatched(m: MatchedPerson) {
      const conv = m.isTest ? m.conv1 : m.conv0;
      const value = m.isTest ? m.value1 : m.value0;
      const a = m.isTest ? arm.test : arm.control;
      a.n++;
      a.conv += conv;
      a.converters += conv > 0 ? 1 : 0;
      a.value += value;
      a.value2 += value * value;
      a.conv2 += conv * conv;
      if (m.reached) {
        reachedConversions += conv;
        reachedValue += value;
      }
      for (const [d, v] of Object.entries(m.dims)) {
        const cell = (byDim[d]![v] ??= { n: 0, c0: 0, c1: 0 });
        cell.n++;
        cell.c0 += m.conv0 > 0 ? 1 : 0;
        cell.c1 += m.conv1 > 0 ? 1 : 0;
      }
      po.n++;
      po.c0 += m.conv0 > 0 ? 1 : 0;
      po.c1 += m.conv1 > 0 ? 1 : 0;
      po.k0 += m.conv0;
      po.k1 += m.conv1;
      po.v0 += m.value0;
      po.v1 += m.value1;
      if (m.isTest) {
        incr.converters += (m.conv1 > 0 ? 1 : 0) - (m.conv0 > 0 ? 1 : 0);
        incr.conversions += m.conv1 - m.conv0;
        incr.value += m.value1 - m.value0;
      }
    },
    finish(meta: {
      generator: string;
      generatorVersion: string;
      params: ResolvedStudyParams;
      expected: ExpectedTruth;
      rngStamp: RngStamp;
    }): GroundTruth {
      const causal = (t: number, c: number, n0 = po.n): CausalTruth => {
        const n = Math.max(n0, 1);
        return { ifAllTest: t / n, ifAllControl: c / n, absoluteLift: (t - c) / n, relativeLift: c > 0 ? t / c - 1 : NaN };
      };
      const matched = arm.test.n + arm.control.n;
      return {
        generator: meta.generator,
        generatorVersion: meta.generatorVersion,
        seed: meta.params.seed,
        rngStamp: meta.rngStamp,
        params: meta.params,
        definitions: {
          matched: "an advertiser person whose normalised email also appears in the purchase file",
          conversion: `a purchase with 0 <= purchase_day < ${meta.params.campaignDays} (campaign window)`,
          converter: "a matched person with at least one conversion",
          lift: "intent-to-treat among matched people: test (reached or not) vs control",
          populations:
            "aggregates count matched people only; if a clean room counts every advertiser person (counts.testPeople/controlPeople), " +
            "unmatched people convert in neither world, so truth.*.relativeLift and truth.incrementalInTestGroup are unchanged " +
            "while rates and absolute lifts scale by the matched share",
          normalisation: "trim, lower-case, drop +tag, and for gmail.com/googlemail.com drop dots and use gmail.com",
        },
        counts: {
          advertiserPeople: acc.advertiserPeople,
          exposureRows: acc.advertiserPeople,
          retailerCustomers: acc.retailerCustomers,
          retailerOnlyCustomers: acc.retailerCustomers - matched,
          purchaseRows: acc.purchaseRows,
          trueOverlap: matched,
          testPeople: acc.testPeople,
          controlPeople: acc.advertiserPeople - acc.testPeople,
          reachedPeople: acc.reachedPeople,
          reachShareOfTest: acc.testPeople > 0 ? acc.reachedPeople / acc.testPeople : 0,
          messyExposureEmailShare: acc.advertiserPeople > 0 ? acc.messyExposureEmails / acc.advertiserPeople : 0,
          messyPurchaseEmailShare: acc.purchaseRows > 0 ? acc.messyPurchaseEmails / acc.purchaseRows : 0,
        },
        aggregates: {
          testPopulation: arm.test.n,
          controlPopulation: arm.control.n,
          testConversions: arm.test.conv,
          controlConversions: arm.control.conv,
          testConverters: arm.test.converters,
          controlConverters: arm.control.converters,
          testValue: arm.test.value,
          controlValue: arm.control.value,
          testValueSquared: arm.test.value2,
          controlValueSquared: arm.control.value2,
          testNumConvSquared: arm.test.conv2,
          controlNumConvSquared: arm.control.conv2,
          reachedConversions,
          reachedValue,
        },
        truth: {
          converters: causal(po.c1, po.c0),
          conversions: causal(po.k1, po.k0),
          valueCents: causal(po.v1, po.v0),
          observed: {
            testConversionRate: arm.test.n > 0 ? arm.test.converters / arm.test.n : NaN,
            controlConversionRate: arm.control.n > 0 ? arm.control.converters / arm.control.n : NaN,
          },
          incrementalInTestGroup: { converters: incr.converters, conversions: incr.conversions, valueCents: incr.value },
          convertersByDimension: Object.fromEntries(
            Object.entries(byDim).map(([d, cells]) => [
              d,
              Object.fromEntries(
                Object.keys(cells)
                  .sort()
                  .map((v) => [v, { matchedPeople: cells[v]!.n, ...causal(cells[v]!.c1, cells[v]!.c0, cells[v]!.n) }]),
              ),
            ]),
          ) as GroundTruth["truth"]["convertersByDimension"],
        },
        expected: meta.expected,
      };
    },
  };
  return acc;
}
