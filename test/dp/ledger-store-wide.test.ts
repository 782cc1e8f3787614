/** Issue 14 #8 at the ledger level: a dataset budget is one budget for every room of the store. */
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { PrivacyLedger, datasetBudgetKey } from "../../kernel-lib/src/dp/ledger.js";
import { pureDp } from "../../kernel-lib/src/dp/accountant.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";

const ds = datasetBudgetKey("ab".repeat(32));

describe("store-wide dataset budgets", () => {
  it("a second room gets the existing budget (never a larger one) and its charges count against it", () => {
    const l = new PrivacyLedger(new Database(":memory:"));
    l.createBudget("room-a", ds, pureDp("1"));
    const b = l.createBudget("room-b", ds, pureDp("5")); // asking for more changes nothing
    expect(b.total.epsilon).toEqual({ num: "1", den: "1" });
    l.chargeAtomic("room-a", [ds], pureDp("0.6"));
    let err: unknown;
    try {
      l.chargeAtomic("room-b", [ds], pureDp("0.6"));
    } catch (e) {
      err = e;
    }
    expect(isCleanRoomError(err, "BUDGET_EXCEEDED")).toBe(true);
    l.chargeAtomic("room-b", [ds], pureDp("0.4"));
    for (const room of ["room-a", "room-b"]) {
      const st = l.status(room).budgets.find((x) => x.scope === "dataset")!;
      expect(st.spent.epsilon).toEqual({ num: "1", den: "1" });
      expect(st.charges).toBe(2);
    }
    expect(l.status("room-c").budgets).toEqual([]); // a room that never used the dataset does not list it
    expect(l.verify()).toEqual({ ok: true, problems: [] });
    expect(l.verify("room-b")).toEqual({ ok: true, problems: [] });
  });

  it("reconciles each room's own charges with that room's audited charges", () => {
    const l = new PrivacyLedger(new Database(":memory:"));
    l.createBudget("room-a", ds, pureDp("1"));
    l.createBudget("room-b", ds, pureDp("1"));
    l.chargeAtomic("room-a", [ds], pureDp("0.25"));
    l.chargeAtomic("room-b", [ds], pureDp("0.5"));
    const name = `dataset/${ds.subject}`;
    const at = new Date().toISOString();
    expect(l.verify("room-a", { audited: [{ index: 3, ts: at, cost: { kind: "pureDp", epsilon: "1/4" }, budgets: [name] }] }).ok).toBe(
      true,
    );
    const v = l.verify("room-b", { audited: [{ index: 7, ts: at, cost: { kind: "pureDp", epsilon: "1/4" }, budgets: [name] }] });
    expect(v.ok).toBe(false);
    expect(v.mismatches).toMatchObject([{ budget: name, entries: [7, 7] }]);
  });
});
