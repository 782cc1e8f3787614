/**
 * Multi-process ledger tests: better-sqlite3 is synchronous, so real concurrency means
 * separate processes ("kernels") with their own connections to the same room file.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PrivacyLedger, type BudgetKey } from "../../kernel-lib/src/dp/ledger.js";
import { pureDp } from "../../kernel-lib/src/dp/accountant.js";
import { ratFrom, ratSum, ratCompare, rat, ratToString } from "../../kernel-lib/src/dp/rational.js";
import { childScript, spawnChild } from "./ledger-procs.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "dp-ledger-"));
  childScript();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const collab: BudgetKey = { scope: "collaboration", subject: "room-1" };
const party: BudgetKey = { scope: "party", subject: "advertiser" };

function freshDb(name: string, setup: (l: PrivacyLedger) => void): string {
  const file = path.join(dir, name);
  const db = new Database(file);
  setup(new PrivacyLedger(db));
  db.close();
  return file;
}

async function race(file: string, procs: number, attempts: number, costs: string, keys: BudgetKey[], threads = 1) {
  const go = `${file}.go`;
  const kids = Array.from({ length: procs }, () =>
    spawnChild(["charge", file, "room-1", String(attempts), costs, JSON.stringify(keys), go, String(threads)]),
  );
  await Promise.all(kids.map((k) => k.waitFor("READY")));
  writeFileSync(go, "go");
  const results = await Promise.all(kids.map((k) => k.done));
  return results.map((r) => {
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.lines[r.lines.length - 1]!) as { ok: number; refused: number; spent: string[]; other: string[] };
  });
}

describe("PrivacyLedger under real concurrency (separate processes, one room file)", () => {
  it("50 concurrent queries (5 processes × 10 threads, 50 connections) against a budget that fits 10 → exactly 10 run", async () => {
    const file = freshDb("fifty.db", (l) => l.createBudget("room-1", collab, pureDp("1")));
    const res = await race(file, 5, 1, "0.1", [collab], 10);
    expect(res.flatMap((r) => r.other)).toEqual([]);
    expect(res.reduce((a, r) => a + r.ok, 0)).toBe(10);
    expect(res.reduce((a, r) => a + r.refused, 0)).toBe(40);
    const l = new PrivacyLedger(new Database(file));
    expect(l.budgetStatus("room-1", collab).spent.epsilon).toEqual({ num: "1", den: "1" });
    expect(l.charges("room-1", collab)).toHaveLength(10);
    expect(l.verify()).toEqual({ ok: true, problems: [] });
  });

  it("two kernels charging mixed costs over two budgets at once cannot overspend either", async () => {
    const file = freshDb("two-kernels.db", (l) => {
      l.createBudget("room-1", collab, pureDp("3"));
      l.createBudget("room-1", party, pureDp("2.5"));
    });
    const res = await race(file, 2, 150, "0.01,0.07,0.03,0.11,0.05", [collab, party]);
    expect(res.flatMap((r) => r.other)).toEqual([]);
    const charged = ratSum(res.flatMap((r) => r.spent).map((s) => ratFrom(s)));
    const l = new PrivacyLedger(new Database(file));
    const sp = l.budgetStatus("room-1", party).spent.epsilon;
    expect(ratToString(ratFrom(sp))).toBe(ratToString(charged)); // spent == Σ successful charges
    expect(ratCompare(charged, rat(5, 2))).toBeLessThanOrEqual(0); // party budget binds first
    expect(ratCompare(ratFrom(l.budgetStatus("room-1", collab).spent.epsilon), charged)).toBe(0); // all-or-nothing
    expect(res.every((r) => r.refused > 0)).toBe(true); // both kernels actually ran out
    expect(l.verify()).toEqual({ ok: true, problems: [] });
  });

  it("kill -9 of a kernel inside the charge transaction leaves the ledger consistent and unlocked", async () => {
    const file = freshDb("kill.db", (l) => {
      l.createBudget("room-1", collab, pureDp("1"));
      l.chargeAtomic("room-1", [collab], pureDp("0.25"), { note: "before" });
    });
    const kid = spawnChild(["hang", file, "room-1", "0.5", JSON.stringify([collab])]);
    await kid.waitFor("INSIDE"); // the child holds the write lock, its rows are written but not committed
    kid.proc.kill("SIGKILL");
    const r = await kid.done;
    expect(r.signal).toBe("SIGKILL");
    const db = new Database(file);
    const l = new PrivacyLedger(db);
    expect(l.verify()).toEqual({ ok: true, problems: [] });
    expect(l.budgetStatus("room-1", collab).spent.epsilon).toEqual({ num: "1", den: "4" });
    expect(l.charges("room-1", collab).map((c) => c.meta.note)).toEqual(["before"]);
    // the lock died with the process: the next charge goes through at once
    l.chargeAtomic("room-1", [collab], pureDp("0.75"));
    expect(l.budgetStatus("room-1", collab).remaining.epsilon).toEqual({ num: "0", den: "1" });
    db.close();
  });
});
