import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PrivacyLedger, type BudgetKey, refreshWarning } from "../../kernel-lib/src/dp/ledger.js";
import { pureDp, approxDp, zCdp, type PrivacyCost } from "../../kernel-lib/src/dp/accountant.js";
import { rat, ratAdd, ratCompare, ratFrom, ratToJson, ZERO, type Rational } from "../../kernel-lib/src/dp/rational.js";
import { isCleanRoomError, type CleanRoomError } from "../../kernel-lib/src/errors.js";

let dir: string;
beforeAll(() => (dir = mkdtempSync(path.join(tmpdir(), "dp-ledger-unit-"))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const collab: BudgetKey = { scope: "collaboration", subject: "room-1" };
const adv: BudgetKey = { scope: "party", subject: "advertiser" };
const ret: BudgetKey = { scope: "party", subject: "retailer" };
const mem = () => new PrivacyLedger(new Database(":memory:"));

function thrown(f: () => unknown): CleanRoomError {
  try {
    f();
  } catch (e) {
    if (isCleanRoomError(e)) return e;
    throw e;
  }
  throw new Error("expected a CleanRoomError");
}

describe("PrivacyLedger", () => {
  it("ten spends of 0.1 exhaust a budget of 1.0 exactly; the eleventh says Requested / Remaining / Difference", () => {
    const l = mem();
    l.createBudget("room-1", collab, pureDp("1"));
    for (let i = 0; i < 10; i++)
      l.chargeAtomic("room-1", [collab], pureDp(0.1), { templateHash: "ab12", purpose: "measurement", party: "advertiser" });
    const s = l.budgetStatus("room-1", collab);
    expect(s.spent.epsilon).toEqual({ num: "1", den: "1" });
    expect(s.remaining.text).toBe("ε = 0");
    const e = thrown(() => l.chargeAtomic("room-1", [collab], pureDp("0.1")));
    expect(e.code).toBe("BUDGET_EXCEEDED");
    expect(e.message).toMatch(/Requested: ε = 0\.1\. Remaining: ε = 0\. Difference: ε = 0\.1\./);
    expect(e.details).toMatchObject({ requested: "ε = 0.1", remaining: "ε = 0", difference: "ε = 0.1", scope: "collaboration" });
    expect(l.charges("room-1", collab)).toHaveLength(10);
    expect(l.charges("room-1", collab)[0]!.meta).toEqual({ templateHash: "ab12", purpose: "measurement", party: "advertiser" });
  });

  it("a partial shortfall states the difference exactly (0.3 requested, 0.2 left)", () => {
    const l = mem();
    l.createBudget("room-1", collab, pureDp("1"));
    l.chargeAtomic("room-1", [collab], pureDp("0.8"));
    const e = thrown(() => l.chargeAtomic("room-1", [collab], pureDp("0.3")));
    expect(e.message).toMatch(/Requested: ε = 0\.3\. Remaining: ε = 0\.2\. Difference: ε = 0\.1\./);
  });

  it("charges all listed budgets or none: a short party budget blocks the collaboration charge too", () => {
    const l = mem();
    l.createBudget("room-1", collab, pureDp("10"));
    l.createBudget("room-1", adv, pureDp("1"));
    l.createBudget("room-1", ret, pureDp("0.5"));
    l.chargeAtomic("room-1", [collab, adv, ret], pureDp("0.4"));
    const e = thrown(() => l.chargeAtomic("room-1", [collab, adv, ret], pureDp("0.2")));
    expect(e.details.subject).toBe("retailer");
    for (const k of [collab, adv, ret]) expect(l.budgetStatus("room-1", k).spent.epsilon).toEqual(ratToJson(rat(2, 5)));
    expect(l.verify().ok).toBe(true);
  });

  it("a kernel restart (reopening the file) resets nothing, and re-creating the budget is idempotent", () => {
    const file = path.join(dir, "restart.db");
    let db = new Database(file);
    let l = new PrivacyLedger(db);
    l.createBudget("room-1", collab, pureDp("1"));
    l.chargeAtomic("room-1", [collab], pureDp("0.7"));
    db.close();
    db = new Database(file);
    l = new PrivacyLedger(db);
    const s = l.createBudget("room-1", collab, pureDp("1"));
    expect(s.spent.epsilon).toEqual(ratToJson(rat(7, 10)));
    expect(thrown(() => l.createBudget("room-1", collab, pureDp("2"))).code).toBe("ALREADY_EXISTS");
    expect(thrown(() => l.chargeAtomic("room-1", [collab], pureDp("0.4"))).code).toBe("BUDGET_EXCEEDED");
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    db.close();
  });

  it("shares the database with other layers' tables", () => {
    const db = new Database(":memory:");
    db.exec("CREATE TABLE audit_entries (seq INTEGER PRIMARY KEY, body TEXT)");
    const l = new PrivacyLedger(db);
    l.createBudget("room-1", collab, zCdp("0.5"));
    db.prepare("INSERT INTO audit_entries (body) VALUES (?)").run("x");
    expect(l.status("room-1").budgets).toHaveLength(1);
  });

  it("converts pure-DP costs into a zCDP budget as ρ = ε²/2, refuses unconvertible ones, and checks δ separately", () => {
    const l = mem();
    l.createBudget("room-1", collab, zCdp("1"));
    l.chargeAtomic("room-1", [collab], pureDp("1"));
    expect(l.budgetStatus("room-1", collab).spent.rho).toEqual({ num: "1", den: "2" });
    l.createBudget("room-1", adv, pureDp("1"));
    expect(thrown(() => l.chargeAtomic("room-1", [adv], zCdp("0.1"))).message).toMatch(/"cost.kind"/);
    l.createBudget("room-1", ret, approxDp("1", "1e-6"));
    l.chargeAtomic("room-1", [ret], approxDp("0.5", "1e-6"));
    const e = thrown(() => l.chargeAtomic("room-1", [ret], approxDp("0.4", "1e-7"))); // ε fits, δ does not
    expect(e.code).toBe("BUDGET_EXCEEDED");
    expect(e.message).toMatch(/Requested: δ = 1e-7\. Remaining: δ = 0\. Difference: δ = 1e-7\./);
  });

  it("refuses bad input before touching the db, naming the field", () => {
    const l = mem();
    l.createBudget("room-1", collab, pureDp("1"));
    expect(thrown(() => l.chargeAtomic("room-1", [collab], { kind: "pureDp", epsilon: rat(0) } as PrivacyCost)).message).toMatch(
      /"cost.epsilon"/,
    );
    expect(thrown(() => l.chargeAtomic("room-1", [collab], { kind: "pureDp", epsilon: rat(-1, 10) } as PrivacyCost)).code).toBe(
      "DP_PARAM_INVALID",
    );
    expect(thrown(() => l.chargeAtomic("room-1", [collab], { kind: "pureDp", epsilon: Number.NaN } as never)).message).toMatch(/NaN/);
    expect(thrown(() => l.chargeAtomic("room-1", [collab], { kind: "pureDp", epsilon: "1e-12" } as never)).message).toMatch(
      /\[1e-9, 1e4\]/,
    );
    expect(thrown(() => l.chargeAtomic("room-1", [], pureDp("0.1"))).message).toMatch(/"budgetKeys"/);
    expect(thrown(() => l.chargeAtomic("room-1", [collab, collab], pureDp("0.1"))).message).toMatch(/distinct/);
    expect(thrown(() => l.chargeAtomic("room-1", [{ scope: "team", subject: "x" } as never], pureDp("0.1"))).message).toMatch(
      /"budgetKeys\[0\].scope"/,
    );
    expect(thrown(() => l.chargeAtomic("room-1", [collab], pureDp("0.1"), { sql: "x" } as never)).message).toMatch(/"meta.sql"/);
    expect(thrown(() => l.chargeAtomic("room-1", [adv], pureDp("0.1"))).code).toBe("BUDGET_NOT_FOUND");
    expect(l.charges("room-1", collab)).toHaveLength(0);
  });

  it("daily refresh restores the allowance each UTC day, keeps lifetime loss, warns, and never reopens a past day", () => {
    let now = new Date("2026-11-25T10:00:00Z");
    const l = new PrivacyLedger(new Database(":memory:"), { now: () => now });
    const s0 = l.createBudget("room-1", collab, pureDp("1"), { refresh: "daily" });
    expect(s0.refreshWarning).toMatch(/averages the noise away/);
    expect(s0.refreshWarning).toMatch(/repeatedly queried across refreshes/);
    expect(s0.nextRefresh).toBe("2026-11-26T00:00:00.000Z");
    l.chargeAtomic("room-1", [collab], pureDp("1"));
    expect(thrown(() => l.chargeAtomic("room-1", [collab], pureDp("0.1"))).code).toBe("BUDGET_EXCEEDED");
    now = new Date("2026-11-26T00:00:01Z");
    expect(l.budgetStatus("room-1", collab).spent.text).toBe("ε = 0");
    l.chargeAtomic("room-1", [collab], pureDp("0.6"));
    const s = l.budgetStatus("room-1", collab);
    expect(s.lifetimeSpent.text).toBe("ε = 1.6");
    expect(s.period).toBe("2026-11-26");
    now = new Date("2026-11-25T23:00:00Z"); // clock goes back
    expect(l.budgetStatus("room-1", collab).spent.text).toBe("ε = 0.6");
    expect(thrown(() => l.chargeAtomic("room-1", [collab], pureDp("0.5"))).code).toBe("BUDGET_EXCEEDED");
    expect(l.verify().ok).toBe(true);
    expect(refreshWarning("none", pureDp("1"))).toBeNull();
  });

  it("monthly periods roll over on the first of the month", () => {
    let now = new Date("2026-01-31T23:59:59Z");
    const l = new PrivacyLedger(new Database(":memory:"), { now: () => now });
    l.createBudget("room-1", collab, pureDp("1"), { refresh: "monthly" });
    l.chargeAtomic("room-1", [collab], pureDp("1"));
    now = new Date("2026-02-01T00:00:00Z");
    expect(l.budgetStatus("room-1", collab).remaining.text).toBe("ε = 1");
    expect(l.budgetStatus("room-1", collab).nextRefresh).toBe("2026-03-01T00:00:00.000Z");
  });
});

describe("PrivacyLedger randomised schedules (property-based)", () => {
  it("never overspends, spent == Σ charges, refusals match the exact model", () => {
    const keys = [collab, adv, ret];
    const op = fc.record({
      budgets: fc.subarray([0, 1, 2], { minLength: 1 }),
      // mostly valid costs, some invalid (0, negative, NaN, tiny)
      cost: fc.oneof(
        { weight: 8, arbitrary: fc.integer({ min: 1, max: 400 }).map((k) => `${k / 1000}`) },
        { weight: 1, arbitrary: fc.constantFrom("0", "-0.1", "NaN", "1e-12", "Infinity") },
      ),
    });
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 3, maxLength: 3 }),
        fc.array(op, { maxLength: 40 }),
        (totals, ops) => {
          const l = mem();
          const total: Rational[] = totals.map((t) => rat(t, 10));
          keys.forEach((k, i) => l.createBudget("r", k, pureDp(total[i]!)));
          const model: Rational[] = [ZERO, ZERO, ZERO];
          for (const o of ops) {
            const ks = o.budgets.map((i) => keys[i]!);
            let valid = true;
            let c: Rational = ZERO;
            try {
              c = ratFrom(o.cost);
              valid = ratCompare(c, rat(1, 1_000_000_000)) >= 0;
            } catch {
              valid = false;
            }
            const shouldFit = valid && o.budgets.every((i) => ratCompare(ratAdd(model[i]!, c), total[i]!) <= 0);
            let ok = false;
            try {
              l.chargeAtomic("r", ks, { kind: "pureDp", epsilon: o.cost } as never);
              ok = true;
            } catch (e) {
              if (!isCleanRoomError(e)) throw e;
              expect(e.code).toBe(valid ? "BUDGET_EXCEEDED" : "DP_PARAM_INVALID");
            }
            expect(ok).toBe(shouldFit);
            if (ok) for (const i of o.budgets) model[i] = ratAdd(model[i]!, c);
            keys.forEach((k, i) => {
              const sp = ratFrom(l.budgetStatus("r", k, 0).spent.epsilon);
              expect(ratCompare(sp, model[i]!)).toBe(0);
              expect(ratCompare(sp, total[i]!)).toBeLessThanOrEqual(0);
            });
          }
          expect(l.verify()).toEqual({ ok: true, problems: [] });
        },
      ),
      { numRuns: 150, seed: 20261125 },
    );
  });
});

describe("dataset budgets keyed by content", () => {
  it("re-uploading the same rows under a new name (or reordered) hits the same budget", async () => {
    const { datasetFingerprint, datasetBudgetKey } = await import("../../kernel-lib/src/dp/budget.js");
    const rows = [JSON.stringify([1, "a"]), JSON.stringify([2, "b"]), JSON.stringify([3, "c"])];
    const fp = datasetFingerprint(rows);
    expect(fp).toMatch(/^[0-9a-f]{64}$/);
    expect(datasetFingerprint([...rows].reverse())).toBe(fp);
    expect(datasetFingerprint(rows.slice(0, 2))).not.toBe(fp);
    expect(datasetFingerprint([...rows, rows[0]!])).not.toBe(fp); // a duplicated row is different data
    const l = mem();
    l.createBudget("room-1", datasetBudgetKey(fp), pureDp("1"));
    l.chargeAtomic("room-1", [datasetBudgetKey(fp)], pureDp("1")); // uploaded as "purchases_v1"
    const renamed = datasetBudgetKey(datasetFingerprint([rows[2]!, rows[0]!, rows[1]!])); // "purchases_final"
    expect(thrown(() => l.chargeAtomic("room-1", [renamed], pureDp("0.1"))).code).toBe("BUDGET_EXCEEDED");
    expect(() => datasetBudgetKey("purchases_final")).toThrow(/"fingerprint"/);
  });
});
