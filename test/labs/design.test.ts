import { describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { previewTemplate, noiseHalfWidth, budgetSpent, sameCost } from "../../kernel-lib/src/cleanroom/design.js";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { templateHash, templateCost } from "../../kernel-lib/src/cleanroom/template.js";
import { discreteLaplaceTail, discreteGaussianTail } from "../../kernel-lib/src/dp/mechanisms.js";
import { PrivacyLedger } from "../../kernel-lib/src/dp/ledger.js";
import { budgetReport } from "../../kernel-lib/src/dp/planner.js";
import { pureDp, zCdp } from "../../kernel-lib/src/dp/accountant.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";

const lift = liftTemplate({
  advertiser: "advertiser",
  retailer: "retailer",
  epsilonPerAggregate: "0.2",
  valueCap: 30000,
  dayRange: [0, 27],
});

function code(f: () => unknown): { code: string; field?: unknown } {
  try {
    f();
  } catch (e) {
    if (isCleanRoomError(e)) return { code: e.code, field: e.details.field };
    throw e;
  }
  throw new Error("expected a refusal");
}

describe("noiseHalfWidth", () => {
  it("returns the smallest n whose exact discrete Laplace tail is within 1 − confidence", () => {
    for (const scale of ["0.5", "5", "150000"]) {
      const n = noiseHalfWidth("laplace", scale, 0.95);
      expect(discreteLaplaceTail(n, scale)).toBeLessThanOrEqual(0.05);
      if (n > 0) expect(discreteLaplaceTail(n - 1, scale)).toBeGreaterThan(0.05);
    }
  });
  it("does the same for the discrete Gaussian", () => {
    const n = noiseHalfWidth("gaussian", "100", 0.9);
    expect(discreteGaussianTail(n, "100")).toBeLessThanOrEqual(0.1);
    expect(discreteGaussianTail(n - 1, "100")).toBeGreaterThan(0.1);
  });
  it("refuses a confidence outside [0.5, 1)", () => {
    expect(code(() => noiseHalfWidth("laplace", "1", 1)).field).toBe("confidence");
  });
});

describe("previewTemplate", () => {
  it("states hash, approvals, slots, threshold and the cost templateCost computes", () => {
    const p = previewTemplate(lift, { startDay: 0, endDay: 27 });
    expect(p.hash).toBe(templateHash(lift));
    expect(p.approvalsNeeded).toEqual(["advertiser", "retailer"]);
    expect(p.params).toEqual([
      { name: "startDay", type: "int", allowed: "integer in [0, 27]" },
      { name: "endDay", type: "int", allowed: "integer in [0, 27]" },
    ]);
    expect(p.threshold).toEqual({ minimum: 100, preset: "fbpcs_kanon", style: "drop" });
    expect(sameCost(p.cost!, templateCost(lift, { startDay: 0, endDay: 27 })!)).toBe(true);
    expect(p.cost!.text).toBe("ε = 1");
    expect(p.text).toContain("purchases.purchase_day ge {startDay}");
  });
  it("gives each noised quantity its sensitivity, scale and ± at the confidence", () => {
    const p = previewTemplate(lift);
    const conv = p.noise!.perQuantity.find((q) => q.name === "converters")!;
    expect(conv).toMatchObject({ sensitivity: "1", scale: "5" });
    expect(conv.plusMinus).toBe(noiseHalfWidth("laplace", "5", 0.95));
    const value = p.noise!.perQuantity.find((q) => q.name === "value")!;
    expect(value.scale).toBe("150000");
    expect(p.noise!.perQuantity.map((q) => q.name)).toEqual(["units", "conversions", "converters", "value", "valueSquared"]);
  });
  it("refuses an out-of-range parameter naming it, before anything else", () => {
    expect(code(() => previewTemplate(lift, { startDay: 0, endDay: 40 }))).toEqual({ code: "PARAM_INVALID", field: "params.endDay" });
  });
  it("says a template without noise makes no DP claim", () => {
    const p = previewTemplate(liftTemplate({ advertiser: "a", retailer: "b" }), { startDay: 0, endDay: 27 });
    expect(p.noise).toBeNull();
    expect(p.cost).toBeNull();
    expect(p.text).toContain("NOT differentially private");
  });
});

describe("budgetSpent / sameCost", () => {
  it("reads exactly what was charged between two reports", () => {
    const db = new Database(":memory:");
    const ledger = new PrivacyLedger(db);
    const key = { scope: "collaboration" as const, subject: "room" };
    ledger.createBudget("room", key, pureDp("3"), { refresh: "none" });
    ledger.chargeAtomic("room", [key], pureDp("0.1"), {});
    const before = budgetReport(ledger.status("room"));
    ledger.chargeAtomic("room", [key], pureDp("0.2"), {});
    const after = budgetReport(ledger.status("room"));
    const d = budgetSpent(before, after);
    expect(d.text).toBe("ε = 0.2");
    expect(sameCost(d, pureDp("0.2"))).toBe(true);
    expect(sameCost(d, pureDp("0.3"))).toBe(false);
    expect(sameCost(d, zCdp("0.2"))).toBe(false);
    expect(code(() => budgetSpent(before, after, { scope: "party" })).code).toBe("BUDGET_NOT_FOUND");
    expect(code(() => budgetSpent(after, before)).code).toBe("DP_PARAM_INVALID");
  });
});
