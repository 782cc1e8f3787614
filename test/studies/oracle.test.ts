import { describe, expect, it } from "vitest";
import { generateStudy } from "../../kernel-lib/src/datasets/study.js";
import { oracleLiftAggregates } from "../../kernel-lib/src/studies/oracle.js";
import { computeGroupedLift } from "../../kernel-lib/src/studies/lift.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";

const study = generateStudy({
  seed: "oracle",
  advertiserRows: 8000,
  overlap: 0.5,
  holdoutShare: 0.3,
  baseConversionRate: 0.1,
  liftPct: 30,
});

describe("exact oracle (god's-eye view)", () => {
  it("is labelled as the view no party has and reproduces the ground-truth aggregates", () => {
    const o = oracleLiftAggregates(study.exposures, study.purchases);
    expect(o.view).toMatch(/god's-eye/);
    expect(o.matchedPeople).toBe(study.groundTruth.counts.trueOverlap);
    expect(o.cohorts).toHaveLength(1);
    expect(o.cohorts[0]!.aggregates).toEqual(study.groundTruth.aggregates);
  });

  it("cohorts by channel partition the overall aggregates", () => {
    const { cohorts } = oracleLiftAggregates(study.exposures, study.purchases, { by: ["channel"] });
    expect(cohorts.map((c) => c.cohort.channel)).toEqual(["display", "search", "social", "video"]);
    const total = study.groundTruth.aggregates;
    for (const k of Object.keys(total) as (keyof typeof total)[])
      expect(cohorts.reduce((s, c) => s + c.aggregates[k], 0)).toBeCloseTo(total[k], 6);
  });

  it("flags small cohorts when grouped finely (region × age × channel) at k = 100", () => {
    const { cohorts } = oracleLiftAggregates(study.exposures, study.purchases, { by: ["region", "age_band", "channel"] });
    const g = computeGroupedLift(cohorts);
    expect(g.flaggedCohorts).toBeGreaterThan(0);
    expect(g.flaggedCohorts).toBeLessThanOrEqual(cohorts.length);
  });

  it("a per-person conversion cap lowers conversions but never converters", () => {
    const full = oracleLiftAggregates(study.exposures, study.purchases).cohorts[0]!.aggregates;
    const capped = oracleLiftAggregates(study.exposures, study.purchases, { maxConversionsPerPerson: 1 }).cohorts[0]!.aggregates;
    expect(capped.testConverters).toBe(full.testConverters);
    expect(capped.testConversions).toBe(capped.testConverters);
    expect(capped.testConversions).toBeLessThan(full.testConversions);
  });

  it("refuses an unknown dimension naming it", () => {
    try {
      oracleLiftAggregates(study.exposures, study.purchases, { by: ["email" as never] });
      expect.unreachable();
    } catch (e) {
      expect(isCleanRoomError(e, "PARAM_INVALID")).toBe(true);
      expect((e as Error).message).toMatch(/options.by\[0\]/);
    }
  });
});
