/**
 * Internal analytics (labs/internal-analytics.ts): purpose per team, k-anonymity by
 * generalisation with a re-identification (linkage) test, then DP on top — each layer's effect
 * measured against the one below it (positive controls: the raw release is re-identifiable; the
 * k-anonymous release falls to new-joiner differencing). Seeded.
 */
import { describe, expect, it } from "vitest";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { internalAnalyticsLab, internalPopulation, kAnonymise, qiClass } from "../../kernel-lib/src/labs/internal-analytics.js";

describe("k-anonymity by generalisation", () => {
  const people = internalPopulation(3000, seededRng("ka"));
  for (const k of [2, 5, 20]) {
    it(`k = ${k}: every released class has ≥ k people, suppression ≤ 2%, and it is the least lossy such lattice point`, () => {
      const r = kAnonymise(people, k);
      const sizes = new Map<string, number>();
      for (const row of r.rows) sizes.set(row.qi, (sizes.get(row.qi) ?? 0) + 1);
      expect(Math.min(...sizes.values())).toBeGreaterThanOrEqual(k);
      expect(r.suppressed).toBeLessThanOrEqual(0.02 * people.length);
      expect(r.rows.length + r.suppressed).toBe(people.length);
      // one step less generalisation on ZIP (when possible) would break k (or the suppression cap)
      const g = r.generalisation;
      if (g.zipDigits < 5) {
        const finer = { ...g, zipDigits: g.zipDigits + 1 };
        const s2 = new Map<string, number>();
        for (const p of people) s2.set(qiClass(p, finer), (s2.get(qiClass(p, finer)) ?? 0) + 1);
        const small = [...s2.values()].filter((s) => s < k).reduce((a, b) => a + b, 0);
        const better = small <= 0.02 * people.length; // a finer ZIP loses less: it must not qualify
        expect(better).toBe(false);
      }
    });
  }
});

describe("what each layer adds", () => {
  const r = internalAnalyticsLab(seededRng("org"));
  const [raw, kAnon, dp] = r.layers as [(typeof r.layers)[0], (typeof r.layers)[0], (typeof r.layers)[0]];
  it("purpose per team: the sensitive column is for reporting only; marketing is denied", () => {
    const by = (team: string, column: string) => r.teams.find((t) => t.team === team && t.column === column)!;
    expect(by("population-health", "condition").permitted).toBe(true);
    expect(by("growth", "zip")).toMatchObject({ permitted: false, deniedBy: "marketing" });
    expect(by("fraud", "zip").permitted).toBe(true);
    expect(by("fraud", "condition").permitted).toBe(false);
  });
  it("re-identification: the raw release links many targets uniquely (control); k-anonymity links none", () => {
    expect(raw.uniqueLinkage).toBeGreaterThan(0.3);
    expect(raw.attributeGuess).toBeGreaterThan(0.75);
    expect(kAnon.uniqueLinkage).toBe(0);
    expect(dp.uniqueLinkage).toBe(0);
  });
  it("k-anonymity still leaks: homogeneity above the base rate, and new-joiner differencing succeeds every time", () => {
    expect(kAnon.attributeGuess).toBeGreaterThan(r.baseRate + 0.05);
    expect(kAnon.newJoinerGuess).toBe(1);
  });
  it("DP on top: differencing falls below its bound (e^{2ε}·base rate); the analysts pay a measured error", () => {
    expect(dp.newJoinerGuess).toBeLessThan(r.newJoinerBound);
    expect(dp.newJoinerGuess).toBeLessThan(0.5);
    expect(dp.analystError).toBeGreaterThan(0);
    expect(kAnon.analystError).toBe(0);
    expect(r.rngStamp.rngMode).toBe("seeded");
  });
});
