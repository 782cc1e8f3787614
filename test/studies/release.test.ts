import { describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import * as aq from "arquero";
import { liftFromRelease, noiseVarianceByAggregate, type ReleasedLiftCohort } from "../../kernel-lib/src/studies/release.js";
import { computeLift } from "../../kernel-lib/src/studies/lift.js";
import { generateStudy } from "../../kernel-lib/src/datasets/study.js";
import { normalizeStudyEmail } from "../../kernel-lib/src/datasets/emails.js";
import { DatasetCatalog } from "../../kernel-lib/src/cleanroom/dataset.js";
import { TemplateRegistry } from "../../kernel-lib/src/cleanroom/approvals.js";
import { executeQuery, prepareQuery, roomContext } from "../../kernel-lib/src/cleanroom/query.js";
import { ArqueroEngine } from "../../kernel-lib/src/cleanroom/engine.js";
import { liftRules, liftSchemas, liftTemplate, toLiftAggregates } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { seededRng } from "../../kernel-lib/src/rng.js";

const released: ReleasedLiftCohort = {
  cohort: "overall",
  testPopulation: 1000,
  controlPopulation: 500,
  testConversions: 150,
  controlConversions: 60,
  testConverters: 120,
  controlConverters: 50,
  testValue: 6000,
  controlValue: 2500,
  testValueSquared: 900000,
  controlValueSquared: 400000,
  noiseVariance: { population: 2, conversions: 32, converters: 2, value: 8e6, valueSquared: 1e12 },
  suppressed: false,
};

describe("liftFromRelease", () => {
  it("maps per-arm metric variances onto both arms' aggregates", () => {
    const v = noiseVarianceByAggregate(released.noiseVariance);
    expect(v.testConverters).toBe(2);
    expect(v.controlConverters).toBe(2);
    expect(v.controlValueSquared).toBe(1e12);
    expect(Object.keys(v)).toHaveLength(10);
  });

  it("runs computeLift per cohort with the noise variances and reports suppressed cohorts without estimates", () => {
    const { noiseVariance, cohort, suppressed, ...values } = released;
    const out = liftFromRelease([released, { ...released, cohort: "west", controlPopulation: null, suppressed: true }]);
    expect(out.cohorts[0]!.result).toEqual(computeLift(values as never, { noiseVariance: noiseVarianceByAggregate(noiseVariance) }));
    expect(out.cohorts[0]!.result!.converters.variance!.absoluteLift.noise).toBeGreaterThan(0);
    expect(out.cohorts[1]).toEqual({ cohort: "west", suppressed: true, result: null });
    expect(out.suppressedCohorts).toBe(1);
    void cohort;
    void suppressed;
  });

  it("refuses a negative noise variance naming the metric", () => {
    expect(() => liftFromRelease([{ ...released, noiseVariance: { ...released.noiseVariance, value: -1 } }])).toThrow(
      /noiseVariance.value/,
    );
  });
});

describe("end to end: generated study → clean-room lift template (DP noise) → lift CI covers the ground truth", () => {
  it("recovers the true intent-to-treat lift within its noise-aware interval", async () => {
    const {
      exposures,
      purchases,
      groundTruth: gt,
    } = generateStudy({ seed: "e2e-lift", advertiserRows: 40_000, overlap: 0.7, holdoutShare: 0.4, baseConversionRate: 0.1, liftPct: 40 });
    // Stand-in for PSI: each party replaces the e-mail by the normalised e-mail as join_key.
    const ex = aq.from(exposures.map(({ email, ...r }) => ({ join_key: normalizeStudyEmail(email), ...r })));
    const pu = aq.from(purchases.map(({ email, ...r }) => ({ join_key: normalizeStudyEmail(email), ...r })));
    const catalog = new DatasetCatalog();
    const s = liftSchemas();
    catalog.upload("exposures", "adv", ex, s.exposures);
    catalog.upload("purchases", "shop", pu, s.purchases);
    const rules = liftRules(100);
    const ctx = roomContext(
      catalog,
      new Map([
        ["adv/exposures", rules.exposures],
        ["shop/purchases", rules.purchases],
      ]),
    );
    const registry = new TemplateRegistry(new Database(":memory:"), "e2e");
    const t = liftTemplate({ advertiser: "adv", retailer: "shop", epsilonPerAggregate: "0.5", conversionCap: 4 });
    registry.approve(t, "adv", ctx);
    registry.approve(t, "shop", ctx);
    const res = await executeQuery(
      prepareQuery({ template: t, params: { startDay: 0, endDay: gt.params.campaignDays - 1 }, registry, ctx }),
      {
        engine: new ArqueroEngine(),
        rng: seededRng("e2e-noise"),
      },
    );
    const study = liftFromRelease(toLiftAggregates(res));
    const r = study.cohorts[0]!.result!;
    // all advertiser rows are uploaded, so populations are all test/control people; the
    // relative ITT lift is the same (unmatched people convert in neither world)
    expect(Math.abs(r.testPopulation - gt.counts.testPeople)).toBeLessThan(50);
    const ci = r.converters.ci!.relativeLift!;
    expect(ci[0]).toBeLessThanOrEqual(gt.truth.converters.relativeLift);
    expect(ci[1]).toBeGreaterThanOrEqual(gt.truth.converters.relativeLift);
    expect(r.converters.variance!.relativeLift!.noiseShare).toBeGreaterThan(0);
    expect(ci[0]).toBeGreaterThan(0);
  });
});
