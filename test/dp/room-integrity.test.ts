/**
 * Issue 14 #6 (ledger reconciled with the audit chain), #8 (store-wide dataset budgets) and
 * #10 (the room's budget configuration lives in the room).
 */
import Database from "better-sqlite3";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { openLab } from "../../kernel-lib/src/session.js";
import { internals } from "../../kernel-lib/src/session/lab.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { query, setUp, studyRows } from "./lab-fixture.js";

const tmp = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "crl-integrity-")), "room.db");
const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    if (isCleanRoomError(e)) return e;
    throw e;
  }
  return null;
};

describe("the ledger cannot be zeroed unnoticed (issue 14 #6)", () => {
  it("DELETE FROM dp_charges and zeroed spent columns: audit() reports a ledger mismatch naming the budget and the entry range", async () => {
    const store = tmp();
    const lab = openLab({ store, rng: { seed: "zero" }, budget: { epsilon: 6 } });
    setUp(lab);
    await query(lab);
    await query(lab);
    expect(lab.audit().verification.ok).toBe(true);
    const charges = lab
      .audit({ limit: 1000 })
      .entries.filter((e) => e.action === "charge")
      .map((e) => e.seq);
    expect(charges).toHaveLength(2);
    lab.close();

    const db = new Database(store);
    db.prepare("DELETE FROM dp_charges").run();
    const zero = db.prepare("SELECT spent_json FROM dp_budgets LIMIT 1").get() as { spent_json: string };
    const z = JSON.stringify({ ...JSON.parse(zero.spent_json), epsilon: { num: "0", den: "1" } });
    db.prepare("UPDATE dp_budgets SET spent_json = ?, lifetime_json = ?").run(z, z);
    db.close();

    const again = openLab({ store, rng: { seed: "zero" } });
    expect(internals(again).room.ledger.verify("lab").ok).toBe(true); // the ledger alone is self-consistent...
    const v = again.audit().verification;
    expect(v).toMatchObject({ ok: false, problem: "ledger_mismatch", firstBadIndex: charges[0] });
    expect(v.detail).toContain(`budget collaboration/lab: audit entries ${charges[0]}..${charges[1]} record 2 charge(s)`);
    expect(v.detail).toMatch(/party\/advertiser/);
    expect(v.detail).toMatch(/dataset\/sha256:[0-9a-f]{64}/);
    again.close();
  });

  it("an untouched room with charges across restarts reconciles", async () => {
    const store = tmp();
    for (let k = 0; k < 2; k++) {
      const lab = openLab({ store, rng: { seed: "recon" }, budget: { epsilon: 6 } });
      setUp(lab);
      await query(lab);
      expect(lab.audit().verification.ok).toBe(true);
      lab.close();
    }
  });
});

describe("dataset budgets bind across every room of a store (issue 14 #8)", () => {
  it("four room ids on one file, the same data: the dataset's ε is spent once, not four times", async () => {
    const store = tmp();
    const data = studyRows("shared");
    let ran = 0;
    let refusedAt: string | null = null;
    for (const room of ["a", "b", "c", "d"]) {
      const lab = openLab({ store, room, rng: { seed: `r-${room}` }, budget: { epsilon: 3 } });
      setUp(lab, data);
      for (;;) {
        const e = await refusal(query(lab));
        if (e) {
          expect(e.code).toBe("BUDGET_EXCEEDED");
          refusedAt = (e.details as { scope?: string }).scope ?? null;
          if (room !== "a") expect(refusedAt).toBe("dataset");
          break;
        }
        ran++;
      }
      expect(lab.audit().verification.ok).toBe(true);
      lab.close();
    }
    const one = openLab({ store, room: "a", rng: { seed: "r-a" } });
    const ds = one.budget().budgets.filter((b) => b.scope === "dataset");
    expect(ds).toHaveLength(2);
    for (const b of ds) expect(Number(b.lifetimeSpent.epsilon!.num) / Number(b.lifetimeSpent.epsilon!.den)).toBeLessThanOrEqual(3);
    one.close();
    expect(refusedAt).toBe("dataset"); // rooms b, c, d are refused by the shared dataset budget
    const perQuery = ran; // room a alone can spend the dataset budget; the others add nothing
    const solo = openLab({ store: tmp(), rng: { seed: "solo" }, budget: { epsilon: 3 } });
    setUp(solo, data);
    let alone = 0;
    while (!(await refusal(query(solo)))) alone++;
    solo.close();
    expect(alone).toBeGreaterThan(0);
    expect(perQuery).toBe(alone);
  });
});

describe("the room's budget configuration lives in the room (issue 14 #10)", () => {
  it("a second kernel without `budget` uses the stored one; a different budget is refused and changes nothing", async () => {
    const store = tmp();
    const first = openLab({ store, rng: { seed: "cfg" }, budget: { epsilon: 3, perParty: 2 } });
    setUp(first);
    first.close();

    const second = openLab({ store, rng: { seed: "cfg" } });
    const r = await query(second);
    expect(r.charged).not.toBeNull();
    const party = second.budget().budgets.find((b) => b.scope === "party" && b.subject === "advertiser")!;
    expect(party.total.epsilon).toEqual({ num: "2", den: "1" });
    second.close();

    let err: unknown;
    try {
      openLab({ store, rng: { seed: "cfg" }, budget: { epsilon: 30 } });
    } catch (e) {
      err = e;
    }
    expect(isCleanRoomError(err, "ALREADY_EXISTS")).toBe(true);
    expect((err as { details: { field: string } }).details.field).toBe("options.budget");
    // the same budget spelt differently is the same budget
    const third = openLab({ store, rng: { seed: "cfg" }, budget: { epsilon: "3.0", perParty: "2" } });
    expect(third.budget().budgets.find((b) => b.scope === "collaboration")!.total.epsilon).toEqual({ num: "3", den: "1" });
    third.close();
  });
});

describe("a charge and its audit entry are one unit (issue 14 #7)", () => {
  it("if the audit entry recording a charge cannot be written, nothing is charged", async () => {
    const lab = openLab({ store: tmp(), rng: { seed: "unit" }, budget: { epsilon: 6 } });
    setUp(lab);
    const audit = lab.purpose.audit;
    const append = audit.append.bind(audit);
    audit.append = (input) => {
      if (input.privacyCost) throw new Error("disk full while writing the audit entry");
      return append(input);
    };
    await expect(query(lab)).rejects.toThrow(/disk full/);
    audit.append = append;
    const spent = lab.budget().budgets.map((b) => b.spent.epsilon);
    expect(spent.every((e) => e!.num === "0")).toBe(true);
    expect(lab.audit().verification.ok).toBe(true);
    lab.close();
  });
});
