import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { generateStudy, streamStudy } from "../../kernel-lib/src/datasets/study.js";
import { readStudyFiles, writeStudyFiles, fileSha256 } from "../../kernel-lib/src/datasets/files.js";
import { normalizeStudyEmail } from "../../kernel-lib/src/datasets/emails.js";
import { expectedTruth, resolveStudyParams, type StudyParams } from "../../kernel-lib/src/datasets/params.js";
import { oracleLiftAggregates } from "../../kernel-lib/src/studies/oracle.js";
import { computeLift } from "../../kernel-lib/src/studies/lift.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { TEACHING_LABEL } from "../../kernel-lib/src/rng.js";

const P: StudyParams = {
  seed: "test-seed",
  advertiserRows: 10_000,
  overlap: 0.6,
  holdoutShare: 0.2,
  baseConversionRate: 0.08,
  liftPct: 25,
};
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "cleanroom-ds-"));
const sha = (dir: string, f: string) => fileSha256(path.join(dir, f));

describe("writeStudyFiles", () => {
  it("same seed → byte-identical files, whatever the write chunk size", () => {
    const [a, b] = [tmp(), tmp()];
    const ta = writeStudyFiles(P, a, { chunkLines: 10_000 });
    const tb = writeStudyFiles(P, b, { chunkLines: 333 });
    for (const f of ["exposures.csv", "purchases.csv", "ground_truth.json"]) expect(sha(a, f)).toBe(sha(b, f));
    expect(ta.files.exposures.sha256).toBe(sha(a, "exposures.csv"));
    expect(ta.files.purchases.sha256).toBe(sha(a, "purchases.csv"));
    expect(tb).toEqual(ta);
  });

  it("different seeds → different files", () => {
    const [a, b] = [tmp(), tmp()];
    writeStudyFiles(P, a);
    writeStudyFiles({ ...P, seed: "another-seed" }, b);
    expect(sha(a, "exposures.csv")).not.toBe(sha(b, "exposures.csv"));
    expect(sha(a, "purchases.csv")).not.toBe(sha(b, "purchases.csv"));
  });

  it("writes ground_truth.json beside the data, consistent with the rows", () => {
    const dir = tmp();
    writeStudyFiles(P, dir);
    const { exposures, purchases, groundTruth: gt } = readStudyFiles(dir);
    expect(gt.generatorVersion).toMatch(/^\d+\.\d+\.\d+$/);
    expect(gt.seed).toBe(P.seed);
    expect(gt.rngStamp).toEqual({ rngMode: "seeded", label: TEACHING_LABEL });
    expect(gt.params).toEqual(resolveStudyParams(P));
    expect(exposures.length).toBe(gt.counts.exposureRows);
    expect(exposures.length).toBe(P.advertiserRows);
    expect(purchases.length).toBe(gt.counts.purchaseRows);
    expect(gt.files.purchases.rows).toBe(purchases.length);
    // identity truth: normalisation recovers exactly the stated people and overlap
    const adv = new Set(exposures.map((e) => normalizeStudyEmail(e.email)));
    const ret = new Set(purchases.map((p) => normalizeStudyEmail(p.email)));
    expect(adv.size).toBe(gt.counts.advertiserPeople);
    expect(ret.size).toBe(gt.counts.retailerCustomers);
    expect([...adv].filter((x) => ret.has(x)).length).toBe(gt.counts.trueOverlap);
    // the aggregates in the ground truth are what the exact oracle computes from the files
    const [overall] = oracleLiftAggregates(exposures, purchases, { campaignDays: gt.params.campaignDays }).cohorts;
    expect(overall!.aggregates).toEqual(gt.aggregates);
    expect(gt.truth.observed.testConversionRate).toBe(gt.aggregates.testConverters / gt.aggregates.testPopulation);
    expect(gt.counts.testPeople).toBe(exposures.filter((e) => e.group === "test").length);
    expect(gt.counts.reachedPeople).toBe(exposures.filter((e) => e.reached === 1).length);
    // per-dimension truth partitions the overall truth
    for (const cells of Object.values(gt.truth.convertersByDimension)) {
      const vals = Object.values(cells);
      expect(vals.reduce((s, c) => s + c.matchedPeople, 0)).toBe(gt.counts.trueOverlap);
      expect(vals.reduce((s, c) => s + c.ifAllTest * c.matchedPeople, 0) / gt.counts.trueOverlap).toBeCloseTo(
        gt.truth.converters.ifAllTest,
        12,
      );
    }
    const byChannel = oracleLiftAggregates(exposures, purchases, { by: ["channel"] }).cohorts;
    for (const c of byChannel)
      expect(c.aggregates.testPopulation + c.aggregates.controlPopulation).toBe(
        gt.truth.convertersByDimension.channel[c.cohort.channel!]!.matchedPeople,
      );
  });

  it("refuses bad parameters before creating anything on disk", () => {
    const dir = path.join(tmp(), "never");
    let err: unknown;
    try {
      writeStudyFiles({ ...P, overlap: 1.5 }, dir);
    } catch (e) {
      err = e;
    }
    expect(isCleanRoomError(err, "PARAM_INVALID")).toBe(true);
    expect((err as Error).message).toMatch(/"overlap" expected number in \[0, 1\], got number 1.5/);
    expect(fs.existsSync(dir)).toBe(false);
  });
});

describe("the shipped sample (datasets/sample)", () => {
  const dir = path.resolve(process.cwd(), "datasets/sample");
  it("matches its ground truth hashes and is regenerated byte-for-byte from its parameters", () => {
    const gt = JSON.parse(fs.readFileSync(path.join(dir, "ground_truth.json"), "utf8"));
    expect(sha(dir, "exposures.csv")).toBe(gt.files.exposures.sha256);
    expect(sha(dir, "purchases.csv")).toBe(gt.files.purchases.sha256);
    const again = tmp();
    writeStudyFiles(gt.params, again);
    for (const f of ["exposures.csv", "purchases.csv", "ground_truth.json"]) expect(sha(again, f)).toBe(sha(dir, f));
    const total = ["exposures.csv", "purchases.csv", "ground_truth.json"].reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0);
    expect(total).toBeLessThan(2 * 1024 * 1024);
  });
});

describe("generateStudy data", () => {
  const study = generateStudy(P);

  it("is identical to the streamed rows and deterministic", () => {
    const again = generateStudy(P);
    expect(again.exposures).toEqual(study.exposures);
    expect(again.purchases).toEqual(study.purchases);
  });

  it("has realistic identifier mess: case, whitespace, plus-addressing, googlemail and gmail dots", () => {
    const all = [...study.exposures.map((e) => e.email), ...study.purchases.map((p) => p.email)];
    expect(all.some((e) => e !== e.trim())).toBe(true);
    expect(all.some((e) => /[A-Z]/.test(e))).toBe(true);
    expect(all.some((e) => /\+[a-z0-9]+@/i.test(e))).toBe(true);
    expect(all.some((e) => /@googlemail\.com/i.test(e))).toBe(true);
    expect(study.groundTruth.counts.messyExposureEmailShare).toBeGreaterThan(0.3);
    // the same person is spelled differently across the two parties' files
    const byKey = new Map<string, Set<string>>();
    for (const e of all) {
      const k = normalizeStudyEmail(e);
      if (!byKey.has(k)) byKey.set(k, new Set());
      byKey.get(k)!.add(e);
    }
    expect([...byKey.values()].filter((s) => s.size > 1).length).toBeGreaterThan(1000);
  });

  it("normalises exactly as documented", () => {
    expect(normalizeStudyEmail("  Ann.Smith12+promo@GoogleMail.com\t")).toBe("annsmith12@gmail.com");
    expect(normalizeStudyEmail("JOHN.DOE7@Yahoo.com ")).toBe("john.doe7@yahoo.com");
  });

  it("respects the table contracts: holdout never reached, reach < 100% in test, repeat purchases, dimensions", () => {
    const { exposures, purchases, groundTruth: gt } = study;
    expect(
      exposures.filter((e) => e.group === "control").every((e) => e.reached === 0 && e.impressions === 0 && e.first_exposure_day === -1),
    ).toBe(true);
    expect(exposures.filter((e) => e.reached === 1).every((e) => e.impressions >= 1 && e.first_exposure_day >= 0)).toBe(true);
    expect(gt.counts.reachShareOfTest).toBeGreaterThan(0.6);
    expect(gt.counts.reachShareOfTest).toBeLessThan(0.8);
    expect(gt.counts.controlPeople / gt.counts.advertiserPeople).toBeCloseTo(0.2, 1);
    expect(new Set(exposures.map((e) => e.channel)).size).toBe(4);
    expect(new Set(exposures.map((e) => e.age_band)).size).toBe(5);
    expect(purchases.every((p) => Number.isInteger(p.value_cents) && p.value_cents >= 0)).toBe(true);
    expect(gt.aggregates.testConversions).toBeGreaterThan(gt.aggregates.testConverters); // repeat purchases
    // heavy tail: the top 1% of purchase values carry far more than 1% of revenue
    const v = purchases.map((p) => p.value_cents).sort((a, b) => b - a);
    const top = v.slice(0, Math.ceil(v.length / 100)).reduce((a, b) => a + b, 0);
    expect(top / v.reduce((a, b) => a + b, 0)).toBeGreaterThan(0.08);
  });

  it("refuses out-of-range parameters naming the field", () => {
    for (const [field, bad] of [
      ["holdoutShare", 0],
      ["liftPct", -5],
      ["advertiserRows", 2.5],
      ["baseConversionRate", 0.9],
    ] as const) {
      let err: unknown;
      try {
        streamStudy({ ...P, [field]: bad }, { exposure() {}, purchase() {} });
      } catch (e) {
        err = e;
      }
      expect(isCleanRoomError(err, "PARAM_INVALID")).toBe(true);
      expect((err as Error).message).toContain(`"${field}"`);
    }
    expect(() => streamStudy({ ...P, mess: { typo: 0.1 } as never }, { exposure() {}, purchase() {} })).toThrow(/mess.typo/);
  });
});

describe("stated lift is in the data (within sampling error)", () => {
  const params = { advertiserRows: 60_000, overlap: 0.7, holdoutShare: 0.4, baseConversionRate: 0.1, liftPct: 40 };
  for (const seed of ["lift-check-1", "lift-check-2"]) {
    it(`oracle estimate's 95% CI covers the true lift (seed ${seed})`, () => {
      const { exposures, purchases, groundTruth: gt } = generateStudy({ seed, ...params });
      const [overall] = oracleLiftAggregates(exposures, purchases).cohorts;
      const r = computeLift(overall!.aggregates);
      const covers = (ci: [number, number] | null | undefined, x: number) => ci != null && ci[0] <= x && x <= ci[1];
      expect(covers(r.converters.ci?.relativeLift, gt.truth.converters.relativeLift)).toBe(true);
      expect(covers(r.converters.ci?.relativeLift, gt.expected.relativeLift)).toBe(true);
      expect(covers(r.converters.ci?.incremental, gt.truth.incrementalInTestGroup.converters)).toBe(true);
      expect(covers(r.value.ci?.relativeLift, gt.truth.valueCents.relativeLift)).toBe(true);
      // power: at this size the lift is detectable (the interval excludes 0)
      expect(r.converters.ci!.relativeLift![0]).toBeGreaterThan(0);
    });
  }

  it("A/A: with liftPct 0 the true lift is 0 and the interval covers it", () => {
    const { exposures, purchases, groundTruth: gt } = generateStudy({ seed: "aa-check", ...params, liftPct: 0 });
    expect(gt.truth.converters.relativeLift).toBe(0);
    expect(gt.truth.incrementalInTestGroup.converters).toBe(0);
    const r = computeLift(oracleLiftAggregates(exposures, purchases).cohorts[0]!.aggregates);
    expect(r.converters.ci!.relativeLift![0]).toBeLessThanOrEqual(0);
    expect(r.converters.ci!.relativeLift![1]).toBeGreaterThanOrEqual(0);
  });

  it("expected truth: ITT lift is diluted by reach, and naive reached-vs-control is biased", () => {
    const e = expectedTruth(resolveStudyParams({ seed: "x", ...params }));
    expect(e.controlConversionRate).toBeCloseTo(0.1, 12);
    expect(e.relativeLift).toBeGreaterThan(0.7 * 0.4 * 0.9);
    expect(e.relativeLift).toBeLessThan(0.4);
    expect(e.naiveReachedVsControlLift).not.toBeCloseTo(0.4, 2);
    // per-dimension expectations average back to the overall control rate (weights 30/35/20/15)
    const ch = e.byDimension.channel;
    expect(
      0.3 * ch.search!.controlConversionRate +
        0.35 * ch.social!.controlConversionRate +
        0.2 * ch.video!.controlConversionRate +
        0.15 * ch.display!.controlConversionRate,
    ).toBeCloseTo(0.1, 12);
    expect(ch.search!.controlConversionRate).toBeGreaterThan(ch.social!.controlConversionRate);
  });
});
