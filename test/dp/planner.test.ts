import { describe, expect, it } from "vitest";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { rat, ratFrom, ratMul } from "../../kernel-lib/src/dp/rational.js";
import { pureDp, approxDp, zCdp, costToJson } from "../../kernel-lib/src/dp/accountant.js";
import {
  discreteLaplaceTail,
  discreteGaussianTail,
  discreteLaplaceVariance,
  sampleDiscreteLaplaceMany,
  sampleDiscreteGaussianMany,
  laplaceScaleFor,
  gaussianSigma2For,
} from "../../kernel-lib/src/dp/mechanisms.js";
import { affordableCount, epsilonForAccuracy, whatRemainingBuys, compareAccountants, erfc } from "../../kernel-lib/src/dp/planner.js";
import {
  countSensitivity,
  sumSensitivity,
  noisySumFixedPoint,
  releaseInteger,
  costOfNoise,
  toGridUnits,
} from "../../kernel-lib/src/dp/bounding.js";

describe("planner", () => {
  it("counts affordable queries exactly from a remaining budget (JSON or exact)", () => {
    expect(affordableCount(pureDp("1"), pureDp("0.1"))).toBe(10);
    expect(affordableCount(costToJson(pureDp("0.7")), pureDp("0.3"))).toBe(2);
    expect(affordableCount({ kind: "pureDp", epsilon: { num: "0", den: "1" }, text: "ε = 0" }, pureDp("0.1"))).toBe(0);
    expect(affordableCount(zCdp("1"), pureDp("1"))).toBe(2); // ρ = ε²/2
    expect(affordableCount(approxDp("1", "1e-6"), approxDp("0.1", "3e-7"))).toBe(3); // δ binds
  });

  it("accuracy-first ε meets ±N at 95% by the exact discrete tail, and is tight", () => {
    for (const accuracy of [0, 3, 10, 250]) {
      const p = epsilonForAccuracy({ accuracy, confidence: 0.95 });
      const eps = ratFrom(p.laplace.epsilon);
      expect(discreteLaplaceTail(accuracy, laplaceScaleFor(eps, 1n))).toBeLessThanOrEqual(0.05);
      expect(discreteLaplaceTail(accuracy, laplaceScaleFor(ratMul(eps, rat(99, 100)), 1n))).toBeGreaterThan(0.05);
      const rho = ratFrom(p.gaussian.rho);
      expect(discreteGaussianTail(accuracy, gaussianSigma2For(rho, 1n))).toBeLessThanOrEqual(0.05);
      expect(discreteGaussianTail(accuracy, gaussianSigma2For(ratMul(rho, rat(99, 100)), 1n))).toBeGreaterThan(0.05);
    }
  });

  it("the discrete answer differs from the continuous formula and is the one that holds empirically", () => {
    const p = epsilonForAccuracy({ accuracy: 5, confidence: 0.95 });
    expect(p.laplace.continuousEpsilon).toBeGreaterThan(Number(p.laplace.epsilon)); // discrete needs less ε at small N
    const xs = sampleDiscreteLaplaceMany(laplaceScaleFor(p.laplace.epsilon, 1n), 100_000, seededRng("plan-lap"));
    const within = xs.filter((x) => x >= -5n && x <= 5n).length / xs.length;
    expect(within).toBeGreaterThan(0.95 - 4 * Math.sqrt((0.05 * 0.95) / 1e5));
    const gs = sampleDiscreteGaussianMany(gaussianSigma2For(p.gaussian.rho, 1n), 100_000, seededRng("plan-g"));
    expect(gs.filter((x) => x >= -5n && x <= 5n).length / gs.length).toBeGreaterThan(0.95 - 4 * Math.sqrt((0.05 * 0.95) / 1e5));
  });

  it("uses sensitivity: Δ = 10 needs 10× the ε of Δ = 1", () => {
    const a = Number(epsilonForAccuracy({ accuracy: 100, confidence: 0.9 }).laplace.epsilon);
    const b = Number(epsilonForAccuracy({ accuracy: 100, confidence: 0.9, sensitivity: 10n }).laplace.epsilon);
    expect(b / a).toBeCloseTo(10, 4);
  });

  it("shows side by side what an (ε, δ) budget buys under basic, advanced and zCDP accounting", () => {
    const { rows } = whatRemainingBuys(approxDp("3", "1e-6"), { accuracy: 100, confidence: 0.95 });
    expect(rows.map((r) => r.accountant)).toEqual([
      "pureDp (basic composition)",
      "approxDp (advanced composition)",
      "zCdp (discrete Gaussian)",
    ]);
    expect(rows[0]!.queries).toBe(
      affordableCount(approxDp("3", "1e-6"), pureDp(epsilonForAccuracy({ accuracy: 100, confidence: 0.95 }).laplace.epsilon)),
    );
    expect(rows[1]!.queries).toBeGreaterThan(rows[0]!.queries);
    expect(rows[2]!.queries).toBeGreaterThan(rows[1]!.queries);
    expect(whatRemainingBuys(pureDp("1"), { accuracy: 10, confidence: 0.95 }).rows).toHaveLength(1);
    expect(JSON.parse(JSON.stringify(whatRemainingBuys(zCdp("1"), { accuracy: 10, confidence: 0.95 }))).rows[0].queries).toBeGreaterThan(0);
    const cmp = compareAccountants({ accuracy: 100, confidence: 0.95 }, 100, "1e-6");
    expect(Number(cmp[2]!.totalEpsilon)).toBeLessThan(Number(cmp[1]!.totalEpsilon));
    expect(Number(cmp[1]!.totalEpsilon)).toBeLessThan(Number(cmp[0]!.totalEpsilon));
  });

  it("validates targets and computes erfc accurately", () => {
    expect(() => epsilonForAccuracy({ accuracy: -1, confidence: 0.95 })).toThrow(/"accuracy"/);
    expect(() => epsilonForAccuracy({ accuracy: 5, confidence: 1 })).toThrow(/"confidence"/);
    expect(() => epsilonForAccuracy({ accuracy: 5, confidence: Number.NaN })).toThrow(/"confidence"/);
    expect(erfc(0.5)).toBeCloseTo(0.4795001221869535, 14);
    expect(erfc(3) / 2.209049699858544e-5).toBeCloseTo(1, 12);
    expect(erfc(10) / 2.088487583762545e-45).toBeCloseTo(1, 10);
  });
});

describe("contribution bounding and fixed-point sums", () => {
  it("derives L1 and squared-L2 sensitivity from groups × rows × clamp", () => {
    expect(countSensitivity({ maxGroupsPerUnit: 3, maxRowsPerGroupPerUnit: 2 })).toEqual({ l1: 6n, l2Squared: 12n });
    expect(sumSensitivity({ maxGroupsPerUnit: 2, maxRowsPerGroupPerUnit: 1 }, -300n, 500n)).toEqual({ l1: 1000n, l2Squared: 500000n });
    expect(() => countSensitivity({ maxGroupsPerUnit: 0, maxRowsPerGroupPerUnit: 1 })).toThrow(/"maxGroupsPerUnit"/);
    expect(() => sumSensitivity({ maxGroupsPerUnit: 1, maxRowsPerGroupPerUnit: 1 }, 5n, 1n)).toThrow(/"bounds"/);
  });

  it("clamps each unit, sums exactly in fixed point and releases on the grid", () => {
    const r = noisySumFixedPoint(
      [12.5, 99.99, 1e9, -5],
      { lower: "0", upper: "100", grid: "0.01", noise: { kind: "laplace", epsilon: "10000" } },
      seededRng("fp"),
    );
    // clamped exact sum 12.50 + 99.99 + 100.00 + 0.00 = 212.49; scale = 10000 units / 1e4 = 1 unit = 0.01
    expect(Math.abs(r.valueNumber - 212.49)).toBeLessThan(0.2);
    expect(r.valueText).toMatch(/^\d+(\.\d{1,2})?$/);
    expect(r.grid).toBe("0.01");
    expect(r.mechanism).toBe("discreteLaplace");
    expect(r.rngMode).toBe("seeded");
    expect(r.label).toMatch(/not private/);
    expect(r.noiseVariance).toBeCloseTo(discreteLaplaceVariance(rat(1)) * 1e-4, 12); // grid units² → real units²
    expect(() =>
      noisySumFixedPoint([1], { lower: "0.001", upper: "100", grid: "0.01", noise: { kind: "laplace", epsilon: "1" } }, seededRng("x")),
    ).toThrow(/"lower" expected a multiple of the grid/);
    expect(() =>
      noisySumFixedPoint([1], { lower: "0", upper: "100", grid: "0.01", noise: { kind: "laplace", epsilon: "0" } }, seededRng("x")),
    ).toThrow(/"noise.epsilon"/);
    expect(toGridUnits(Number.POSITIVE_INFINITY, rat(1, 100), 0n, 10n)).toBe(10n);
    expect(() => toGridUnits(Number.NaN, rat(1, 100), 0n, 10n)).toThrow(/"value"/);
  });

  it("sums a million values exactly (no float accumulation error) before noise", () => {
    const vals = new Float64Array(1_000_000).fill(0.1);
    const r = noisySumFixedPoint(
      vals,
      { lower: "0", upper: "1", grid: "0.1", noise: { kind: "gaussian", rho: "10000" } },
      seededRng("million"),
    );
    // σ² = 10² / (2·1e4) = 1/200 grid units → the noise is 0 with overwhelming probability
    expect(r.units).toBe("1000000");
    expect(r.valueText).toBe("100000");
  });

  it("prices noise before it runs and labels integer releases", () => {
    expect(costOfNoise({ kind: "gaussian", rho: "0.25" })).toEqual(zCdp("0.25"));
    const c = releaseInteger(
      42,
      { kind: "laplace", epsilon: "1" },
      countSensitivity({ maxGroupsPerUnit: 1, maxRowsPerGroupPerUnit: 1 }),
      seededRng("ri"),
    );
    expect(c.cost.text).toBe("ε = 1");
    expect(c.noiseParameter).toBe("1");
    expect(JSON.parse(JSON.stringify(c)).value).toMatch(/^-?\d+$/);
  });
});

describe("budget report (what budget() shows)", () => {
  it("shows spent, remaining and what the remaining budget buys per budget, overall and at an accuracy", async () => {
    const Database = (await import("better-sqlite3")).default;
    const { PrivacyLedger } = await import("../../kernel-lib/src/dp/ledger.js");
    const { budgetReport } = await import("../../kernel-lib/src/dp/planner.js");
    const l = new PrivacyLedger(new Database(":memory:"));
    l.createBudget("room-1", { scope: "collaboration", subject: "room-1" }, pureDp("1"), { refresh: "monthly" });
    l.createBudget("room-1", { scope: "party", subject: "retailer" }, pureDp("0.5"));
    l.chargeAtomic(
      "room-1",
      [
        { scope: "collaboration", subject: "room-1" },
        { scope: "party", subject: "retailer" },
      ],
      pureDp("0.3"),
    );
    const rep = budgetReport(l.status("room-1"), {
      queries: [
        { name: "lift", cost: pureDp("0.1") },
        { name: "gauss", cost: costToJson(zCdp("0.01")) },
      ],
      target: { accuracy: 50, confidence: 0.95 },
    });
    expect(rep.budgets.map((b) => b.buys[0]!.count)).toEqual([7, 2]);
    expect(rep.budgets.map((b) => b.buys[1]!.count)).toEqual([0, 0]); // a zCDP cost cannot be charged to pure budgets
    expect(rep.overall).toEqual([
      { name: "lift", count: 2 },
      { name: "gauss", count: 0 },
    ]);
    expect(rep.budgets[0]!.atAccuracy![0]!.queries).toBeGreaterThan(0);
    expect(rep.text).toMatch(/collaboration\/room-1 \(pureDp\): spent ε = 0\.3 of ε = 1; remaining ε = 0\.7/);
    expect(rep.text).toMatch(/buys 7 × lift \(ε = 0\.1 each\)/);
    expect(rep.text).toMatch(/WARNING: .*averages the noise away/);
    expect(JSON.parse(JSON.stringify(rep)).overall[0].count).toBe(2);
  });
});
