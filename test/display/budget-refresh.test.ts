// @vitest-environment happy-dom
import Database from "better-sqlite3";
import { describe, expect, it, vi } from "vitest";
import { PrivacyLedger } from "../../kernel-lib/src/dp/ledger.js";
import { pureDp } from "../../kernel-lib/src/dp/accountant.js";
import { budgetPayloadFromLedger } from "../../kernel-lib/src/display/from-ledger.js";
import { toMimeBundle } from "../../kernel-lib/src/display/bundle.js";
import { renderPayload } from "../../extension/src/views/payload.js";

// the extension imports the built display module; point it at the source (as views.test.ts does)
vi.mock("@cleanroom-lab/kernel/dist/display/schema.js", () => import("../../kernel-lib/src/display/schema.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/format.js", () => import("../../kernel-lib/src/display/format.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/vegalite.js", () => import("../../kernel-lib/src/display/vegalite.js"));

describe("budget view of a refreshing budget", () => {
  it("shows the refresh policy, the lifetime loss and the ledger's warning; a non-refreshing budget shows none", () => {
    let now = new Date("2026-01-15T10:00:00Z");
    const ledger = new PrivacyLedger(new Database(":memory:"), { now: () => now });
    ledger.createBudget("r", { scope: "collaboration", subject: "r" }, pureDp("1"), { refresh: "monthly" });
    ledger.createBudget("r", { scope: "party", subject: "p" }, pureDp("5"));
    ledger.chargeAtomic(
      "r",
      [
        { scope: "collaboration", subject: "r" },
        { scope: "party", subject: "p" },
      ],
      pureDp("1"),
    );
    now = new Date("2026-02-03T10:00:00Z"); // the monthly budget is restored; the loss is not
    ledger.chargeAtomic(
      "r",
      [
        { scope: "collaboration", subject: "r" },
        { scope: "party", subject: "p" },
      ],
      pureDp("1"),
    );
    const p = budgetPayloadFromLedger(ledger.status("r"));
    const monthly = p.budgets.find((b) => b.scope === "collaboration")!;
    expect(monthly.spent).toBe(1);
    expect(monthly.lifetimeSpent).toBe(2);
    expect(monthly.refresh!.policy).toBe("monthly");
    expect(monthly.refresh!.warning).toMatch(/averages the noise away/);
    expect(p.budgets.find((b) => b.scope === "party")!.refresh).toBeUndefined();
    const b = toMimeBundle(p);
    expect(b["text/plain"]).toMatch(/refreshes monthly · lifetime spent ε 2/);
    expect(b["text/html"]).toMatch(/refreshes monthly/);
    const el = renderPayload(p).node;
    expect(el.querySelectorAll('[data-field="refresh"]').length).toBe(1);
  });
});
