import { describe, expect, it } from "vitest";
import { computeGroupedLift, computeLift, type LiftAggregates } from "../../kernel-lib/src/studies/lift.js";
import { normalQuantile } from "../../kernel-lib/src/studies/normal.js";
import { UniformSource } from "../../kernel-lib/src/datasets/detmath.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";

const Z95 = 1.959963984540054;

/** 1000 test people with 120 converters, 500 control people with 50; values chosen to be irrelevant. */
const base: LiftAggregates = {
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
};

function errorOf(f: () => unknown) {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
}

describe("normalQuantile", () => {
  it("matches known quantiles and is symmetric", () => {
    expect(normalQuantile(0.975)).toBeCloseTo(Z95, 14);
    expect(normalQuantile(0.5)).toBe(0);
    expect(normalQuantile(0.95)).toBeCloseTo(1.6448536269514722, 14);
    expect(normalQuantile(1e-10)).toBeCloseTo(-6.361340902404056, 10);
    expect(normalQuantile(0.01)).toBeCloseTo(-normalQuantile(0.99), 14);
  });
  it("refuses p outside (0, 1)", () => {
    expect(
      isCleanRoomError(
        errorOf(() => normalQuantile(1)),
        "PARAM_INVALID",
      ),
    ).toBe(true);
  });
});

describe("computeLift on hand-computed numbers", () => {
  it("converter rates, absolute and relative lift, incremental scaled to the test population", () => {
    const r = computeLift(base);
    expect(r.converters.test).toBeCloseTo(0.12, 15);
    expect(r.converters.control).toBeCloseTo(0.1, 15);
    expect(r.converters.absoluteLift).toBeCloseTo(0.02, 15);
    expect(r.converters.relativeLift).toBeCloseTo(0.2, 14);
    // 120 − 1000 · 50/500 = 20: control scaled by populationScale = 2
    expect(r.populationScale).toBe(2);
    expect(r.converters.incremental).toBeCloseTo(20, 10);
  });

  it("sampling variance: p(1−p)/(n−1) per arm, delta method for the ratio", () => {
    const r = computeLift(base);
    // .12·.88/999 + .1·.9/499
    const absVar = (0.12 * 0.88) / 999 + (0.1 * 0.9) / 499;
    expect(r.converters.variance!.absoluteLift.sampling).toBeCloseTo(absVar, 15);
    expect(r.converters.variance!.absoluteLift.noise).toBe(0);
    expect(r.converters.variance!.absoluteLift.noiseShare).toBe(0);
    // Var(R) = Var(mt)/mc² + mt²·Var(mc)/mc⁴ = 0.0105705… + 0.0259719… = 0.0365425…
    expect(r.converters.variance!.relativeLift!.total).toBeCloseTo(0.036542514458346116, 12);
    // Var(I) = Nt·s_t² + Nt²·s_c²/Nc = 286.066…
    expect(r.converters.variance!.incremental.total).toBeCloseTo(286.0664271485915, 9);
    const se = Math.sqrt(absVar);
    expect(r.converters.ci!.absoluteLift[0]).toBeCloseTo(0.02 - Z95 * se, 12);
    expect(r.converters.ci!.absoluteLift[1]).toBeCloseTo(0.02 + Z95 * se, 12);
    expect(r.z).toBeCloseTo(Z95, 14);
    // log scale: sd² = Var(mt)/mt² + Var(mc)/mc²; interval exp(log 1.2 ± z·sd) − 1
    const sdLog = Math.sqrt((0.12 * 0.88) / 999 / 0.0144 + (0.1 * 0.9) / 499 / 0.01);
    expect(r.converters.ci!.relativeLiftLog![0]).toBeCloseTo(1.2 * Math.exp(-Z95 * sdLog) - 1, 12);
    expect(r.converters.ci!.relativeLiftLog![1]).toBeCloseTo(1.2 * Math.exp(Z95 * sdLog) - 1, 12);
  });

  it("adds DP noise variance through the delta method and reports its share", () => {
    const r = computeLift(base, { noiseVariance: { testConverters: 100, controlPopulation: 50 } });
    // noise(mt) = 100/1000² = 1e-4 ; noise(mc) = mc²·50/500² = 2e-6
    const v = r.converters.variance!.absoluteLift;
    expect(v.noise).toBeCloseTo(1.02e-4, 15);
    expect(v.sampling).toBeCloseTo((0.12 * 0.88) / 999 + (0.1 * 0.9) / 499, 15);
    expect(v.noiseShare).toBeCloseTo(0.2628415984074396, 12);
    // incremental: v(S_t) + mc²·v(N_t) + Nt²·noise(mc) = 100 + 0 + 2
    expect(r.converters.variance!.incremental.noise).toBeCloseTo(102, 9);
    const exact = computeLift(base);
    const w = (x: { ci: { absoluteLift: [number, number] } | null }) => x.ci!.absoluteLift[1] - x.ci!.absoluteLift[0];
    expect(w(r.converters)).toBeGreaterThan(w(exact.converters));
    expect(r.notes.join(" ")).toMatch(/noise variance/);
  });

  it("value per person uses the squared sums: hand example with 4 test and 3 control people", () => {
    // test values [0, 0, 10, 30]: S = 40, Q = 1000, mean 10, s² = (1000 − 400)/3 = 200
    // control values [0, 20, 0]: S = 20, Q = 400, mean 20/3, s² = (400 − 400/3)/2 = 400/3
    const a: LiftAggregates = {
      ...base,
      testPopulation: 4,
      controlPopulation: 3,
      testValue: 40,
      controlValue: 20,
      testValueSquared: 1000,
      controlValueSquared: 400,
      testConverters: 2,
      controlConverters: 1,
    };
    const r = computeLift(a, { threshold: 0 });
    expect(r.value.absoluteLift).toBeCloseTo(10 - 20 / 3, 12);
    expect(r.value.variance!.absoluteLift.total).toBeCloseTo(200 / 4 + 400 / 3 / 3, 10);
    expect(r.value.incremental).toBeCloseTo(40 - (4 * 20) / 3, 12);
    expect(r.value.variance!.incremental.total).toBeCloseTo(4 * 200 + (16 * 400) / 3 / 3, 9);
  });

  it("gives no conversions interval without testNumConvSquared, and one with it", () => {
    expect(computeLift(base).conversions.ci).toBeNull();
    expect(computeLift(base).notes.join(" ")).toMatch(/NumConvSquared/);
    const r = computeLift({ ...base, testNumConvSquared: 250, controlNumConvSquared: 90 });
    // test: mean .15, s² = (250 − 1000·.0225)/999
    expect(r.conversions.variance!.absoluteLift.sampling).toBeCloseTo((250 - 22.5) / 999 / 1000 + (90 - 500 * 0.0144) / 499 / 500, 14);
  });

  it("flags arms below the threshold k (fbpcs default 100) without hiding the estimate", () => {
    const ok = computeLift(base);
    expect(ok.belowThreshold).toBe(false);
    const small = computeLift({ ...base, controlPopulation: 80, controlConverters: 8 });
    expect(small.belowThreshold).toBe(true);
    expect(small.flags).toEqual([
      { field: "controlPopulation", value: 80, threshold: 100, reason: "controlPopulation below the k-anonymity threshold" },
    ]);
    expect(small.converters.relativeLift).not.toBeNull();
    expect(computeLift({ ...base, controlPopulation: 80, controlConverters: 8 }, { threshold: 50 }).belowThreshold).toBe(false);
  });

  it("returns nulls, not NaN, when a noisy population collapses or the control rate is 0", () => {
    const r = computeLift({ ...base, controlPopulation: -3 });
    expect(r.converters.relativeLift).toBeNull();
    expect(r.converters.ci).toBeNull();
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    const z = computeLift({ ...base, controlConverters: 0 });
    expect(z.converters.relativeLift).toBeNull();
    expect(z.converters.ci!.relativeLift).toBeNull();
  });

  it("notes a noisy squared sum that is inconsistent with its sum (variance floored at 0)", () => {
    const r = computeLift({ ...base, testValueSquared: 10 }); // < 6000²/1000
    expect(r.value.variance!.absoluteLift.sampling).toBeCloseTo((400000 - 2500 ** 2 / 500) / 499 / 500, 10);
    expect(r.notes.join(" ")).toMatch(/testValueSquared < testValue²\/testPopulation/);
    expect(computeLift(base).notes.join(" ")).not.toMatch(/floored/);
  });

  it("refuses malformed input naming the field", () => {
    const e1 = errorOf(() => computeLift({ ...base, testConverters: NaN }));
    expect(isCleanRoomError(e1, "PARAM_INVALID")).toBe(true);
    expect((e1 as Error).message).toMatch(/"aggregates.testConverters" expected finite number, got NaN/);
    expect((errorOf(() => computeLift({ ...base, testConvertrs: 3 } as unknown as LiftAggregates)) as Error).message).toMatch(
      /aggregates.testConvertrs/,
    );
    expect((errorOf(() => computeLift(base, { noiseVariance: { testValue: -1 } })) as Error).message).toMatch(/noiseVariance.testValue/);
    expect((errorOf(() => computeLift(base, { confidence: 1.2 })) as Error).message).toMatch(/options.confidence/);
    expect((errorOf(() => computeLift(base, { threshold: 2.5 })) as Error).message).toMatch(/options.threshold/);
  });

  it("computes per-cohort results and counts flagged cohorts", () => {
    const g = computeGroupedLift([
      { cohort: { channel: "search" }, aggregates: base },
      { cohort: { channel: "video" }, aggregates: { ...base, testPopulation: 60 } },
    ]);
    expect(g.cohorts.map((c) => c.result.belowThreshold)).toEqual([false, true]);
    expect(g.flaggedCohorts).toBe(1);
    expect(JSON.parse(JSON.stringify(g))).toEqual(g);
  });
});

describe("confidence-interval coverage (seeded simulation)", () => {
  // Bernoulli arms with known rates; DP-style noise N(0, σ²) rounded to integers on the
  // converter counts and populations. True relative lift = 0.12/0.10 − 1 = 0.2.
  const N = 3000;
  const [pt, pc] = [0.12, 0.1];
  const trueRel = pt / pc - 1;
  const reps = 800;

  function simulate(sigma: number, seed: string) {
    const u = new UniformSource(seededRng(seed));
    const binom = (n: number, p: number) => {
      let k = 0;
      for (let i = 0; i < n; i++) if (u.next() < p) k++;
      return k;
    };
    const noise = () => (sigma > 0 ? Math.round(sigma * u.normal()) : 0);
    const v = sigma * sigma;
    let withNoiseVar = 0;
    let ignoringNoise = 0;
    let logScale = 0;
    for (let r = 0; r < reps; r++) {
      const a: LiftAggregates = {
        ...base,
        testPopulation: N + noise(),
        controlPopulation: N + noise(),
        testConverters: binom(N, pt) + noise(),
        controlConverters: binom(N, pc) + noise(),
      };
      const nv = { testPopulation: v, controlPopulation: v, testConverters: v, controlConverters: v };
      const covers = (ci: [number, number] | null | undefined) => ci != null && ci[0] <= trueRel && trueRel <= ci[1];
      const withNv = computeLift(a, { noiseVariance: nv }).converters.ci;
      if (covers(withNv?.relativeLift)) withNoiseVar++;
      if (covers(withNv?.relativeLiftLog)) logScale++;
      if (covers(computeLift(a).converters.ci?.relativeLift)) ignoringNoise++;
    }
    if (process.env.SHOW_COVERAGE) console.log(seed, withNoiseVar / reps, ignoringNoise / reps, logScale / reps);
    return { withNoiseVar: withNoiseVar / reps, ignoringNoise: ignoringNoise / reps, logScale: logScale / reps };
  }

  it("covers the true lift ~95% without noise", () => {
    const c = simulate(0, "coverage/exact");
    expect(c.withNoiseVar).toBe(c.ignoringNoise);
    expect(c.withNoiseVar).toBeGreaterThan(0.93);
    expect(c.withNoiseVar).toBeLessThan(0.97);
  });

  it("covers ~95% with noise when the noise variance is included, and under-covers when it is ignored", () => {
    const c = simulate(25, "coverage/noisy"); // noise var 625 vs sampling var of a count ≈ 300
    expect(c.withNoiseVar).toBeGreaterThan(0.93);
    expect(c.withNoiseVar).toBeLessThan(0.97);
    expect(c.ignoringNoise).toBeLessThan(0.8); // positive control: the naive interval is too narrow
    expect(c.logScale).toBeGreaterThan(0.93);
    expect(c.logScale).toBeLessThan(0.98);
  });
});
