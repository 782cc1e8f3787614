import { describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { PrivacyLedger } from "../../kernel-lib/src/dp/ledger.js";
import { ratFromDecimal } from "../../kernel-lib/src/dp/rational.js";
import { budgetPayloadFromLedger } from "../../kernel-lib/src/display/from-ledger.js";

describe("budget payload from the ledger", () => {
  it("carries spent/remaining as numbers and exact fractions, and each charge in the history", () => {
    const L = new PrivacyLedger(new Database(":memory:"));
    const coll = { scope: "collaboration" as const, subject: "room-1" };
    const party = { scope: "party" as const, subject: "retailer" };
    L.createBudget("room-1", coll, { kind: "pureDp", epsilon: ratFromDecimal("1") });
    L.createBudget("room-1", party, { kind: "zCdp", rho: ratFromDecimal("0.5") });
    L.chargeAtomic(
      "room-1",
      [coll],
      { kind: "pureDp", epsilon: ratFromDecimal("0.1") },
      { templateHash: "h1", purpose: "measurement.lift" },
    );
    L.chargeAtomic(
      "room-1",
      [coll],
      { kind: "pureDp", epsilon: ratFromDecimal("0.2") },
      { templateHash: "h2", purpose: "measurement.reach" },
    );
    const p = budgetPayloadFromLedger(L.status("room-1"), { rngMode: "seeded", label: "teaching mode — not private" });
    const c = p.budgets.find((b) => b.scope === "collaboration")!;
    expect(c).toMatchObject({ unit: "epsilon", total: 1, exact: { spent: "3/10", remaining: "7/10" } });
    expect(c.spent).toBeCloseTo(0.3, 12);
    expect(c.remaining).toBeCloseTo(0.7, 12);
    expect(c.history.map((h) => [h.templateHash, h.purpose, h.outcome])).toEqual(
      expect.arrayContaining([
        ["h1", "measurement.lift", "charged"],
        ["h2", "measurement.reach", "charged"],
      ]),
    );
    const r = p.budgets.find((b) => b.scope === "party")!;
    expect(r).toMatchObject({ unit: "rho", accountant: "zCdp", total: 0.5, spent: 0, remaining: 0.5, history: [] });
    expect(p.rngMode).toBe("seeded");
  });
});
