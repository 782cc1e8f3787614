import { describe, expect, it } from "vitest";
import {
  lnGamma,
  lnGammaQ,
  lnChiSquarePValue,
  wilsonHilfertyQuantile,
  chiSquareDiscrete,
  hoeffding,
  epsilonLowerBound,
  betaInc,
  clopperPearson,
  epsilonLowerBoundCP,
} from "./stats.js";

describe("test statistics helpers", () => {
  it("lnGamma matches factorials and Γ(1/2) = √π", () => {
    expect(lnGamma(1)).toBeCloseTo(0, 12);
    expect(lnGamma(11)).toBeCloseTo(Math.log(3628800), 10);
    expect(lnGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 12);
  });

  it("χ² p-values match tabulated critical values", () => {
    expect(Math.exp(lnChiSquarePValue(3.841458820694124, 1))).toBeCloseTo(0.05, 9);
    expect(Math.exp(lnChiSquarePValue(18.307038053275146, 10))).toBeCloseTo(0.05, 9);
    expect(Math.exp(lnChiSquarePValue(6.634896601021214, 1))).toBeCloseTo(0.01, 9);
    expect(Math.exp(lnChiSquarePValue(1, 1))).toBeCloseTo(0.31731050786291415, 9);
  });

  it("χ² tail stays accurate in log space far beyond double underflow (k = 2: Q = e^{-x/2})", () => {
    expect(lnChiSquarePValue(100, 2)).toBeCloseTo(-50, 9);
    expect(lnChiSquarePValue(5000, 2)).toBeCloseTo(-2500, 6);
    // series branch (x < a + 1) and continued fraction branch agree at the boundary
    expect(lnGammaQ(10, 10.999999)).toBeCloseTo(lnGammaQ(10, 11.000001), 5);
  });

  it("agrees with the Wilson–Hilferty approximation at α = 1e-20", () => {
    const z = 9.262340089798409; // upper 1e-20 normal quantile
    for (const k of [20, 50, 100]) {
      const q = wilsonHilfertyQuantile(z, k);
      expect(lnChiSquarePValue(q, k) / Math.log(1e-20)).toBeGreaterThan(0.8);
      expect(lnChiSquarePValue(q, k) / Math.log(1e-20)).toBeLessThan(1.25);
    }
  });

  it("χ² goodness-of-fit accepts exact expected counts and rejects a shifted histogram", () => {
    const pmf = (x: number) => (x >= 0 && x < 10 ? 0.1 : 0);
    const exact = Array.from({ length: 1000 }, (_, i) => i % 10);
    const r = chiSquareDiscrete(exact, pmf, 5);
    expect(r.statistic).toBe(0);
    expect(r.lnP).toBe(0);
    const skew = Array.from({ length: 1000 }, (_, i) => (i % 20 < 14 ? i % 5 : 5 + (i % 5))); // 70% in 0..4
    expect(chiSquareDiscrete(skew, pmf, 5).lnP).toBeLessThan(Math.log(1e-20));
  });

  it("Hoeffding width and the ε lower bound reproduce dp-testing.md's worked numbers", () => {
    expect(hoeffding(1e5, 1e-6)).toBeCloseTo(0.0085, 4);
    expect(epsilonLowerBound(73100, 26900, 1e5, 1e-6)).toBeCloseTo(0.957, 2);
    expect(epsilonLowerBound(100, 100, 1e5, 1e-6)).toBe(-Infinity);
  });

  it("Clopper–Pearson matches closed forms and is tighter than Hoeffding", () => {
    expect(betaInc(0.3, 1, 1)).toBeCloseTo(0.3, 12);
    expect(betaInc(0.5, 2, 2)).toBeCloseTo(0.5, 12);
    expect(betaInc(0.2, 2, 3)).toBeCloseTo(1 - 0.8 ** 4 - 4 * 0.2 * 0.8 ** 3, 12); // I_x(2,3) = P(Bin(4,x) ≥ 2)
    expect(clopperPearson(0, 10, 0.05).hi).toBeCloseTo(1 - 0.025 ** (1 / 10), 9);
    expect(clopperPearson(10, 10, 0.05).lo).toBeCloseTo(0.025 ** (1 / 10), 9);
    const cp = epsilonLowerBoundCP(73100, 26900, 1e5, 1e-6);
    expect(cp).toBeGreaterThan(epsilonLowerBound(73100, 26900, 1e5, 1e-6));
    expect(cp).toBeLessThan(Math.log(73100 / 26900));
  });
});
