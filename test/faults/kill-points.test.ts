/**
 * Fault injection (issue 14): kill -9 at every named write point of the query road — budget
 * creation, the charge, the audit entry, head signing, head publication, the head file's
 * temp-write and rename — inside the library's own write path (CLEANROOM_FAULT, faults.ts),
 * each in a child process; then reopen and check what a user or auditor would see:
 *  - the audit chain verifies (a crash is never reported as tampering),
 *  - the ledger is self-consistent, nothing is overspent, and it reconciles with the audited
 *    charges (no charge without its audit entry, no audited charge missing from the ledger),
 *  - no half-written dataset (sealed bytes ⇔ catalogue row ⇔ its dataset budget),
 *  - the room stays usable: the same work run again afterwards completes and verifies.
 */
import Database from "better-sqlite3";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAULT_POINTS } from "../../kernel-lib/src/faults.js";
import { openLab } from "../../kernel-lib/src/session.js";
import { internals } from "../../kernel-lib/src/session/lab.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { query, setUp, studyRows } from "../dp/lab-fixture.js";
import { faultChild, inBatches, tracedPoints, type FaultChild } from "./harness.js";

let child: FaultChild;
let dir = "";

beforeAll(() => {
  child = faultChild("fault-child");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "crl-faults-"));
});
afterAll(() => {
  child?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});
const run = (store: string, fault?: string) => child.run([store], fault);

/** What a user reopening the room sees; throws (with the kill point) on any inconsistency. */
function checkRoom(store: string, at: string): void {
  const lab = openLab({ store, rng: { seed: "faults" } });
  try {
    const v = lab.audit().verification;
    expect(v.ok, `${at}: ${v.problem} ${v.detail}`).toBe(true);
    const l = internals(lab).room.ledger.verify();
    expect(l.problems, at).toEqual([]);
    for (const b of lab.budget().budgets) {
      const spent = BigInt(b.spent.epsilon!.num) * BigInt(b.total.epsilon!.den);
      expect(spent <= BigInt(b.total.epsilon!.num) * BigInt(b.spent.epsilon!.den), `${at}: ${b.scope}/${b.subject} overspent`).toBe(true);
    }
  } finally {
    lab.close();
  }
  const db = new Database(store, { readonly: true });
  try {
    const sealed = (db.prepare("SELECT dataset_id FROM purpose_sealed_datasets ORDER BY dataset_id").all() as { dataset_id: string }[]).map(
      (r) => r.dataset_id,
    );
    const catalogue = db.prepare("SELECT key, meta_json FROM lab_datasets ORDER BY key").all() as { key: string; meta_json: string }[];
    expect(
      catalogue.map((r) => r.key),
      `${at}: sealed bytes and catalogue disagree`,
    ).toEqual(sealed);
    const hasConfig = db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'lab_room_config'").get() as { n: number };
    if (hasConfig.n)
      for (const r of catalogue) {
        const fp = (JSON.parse(r.meta_json) as { fingerprint: string }).fingerprint;
        expect(
          db.prepare("SELECT COUNT(*) AS n FROM dp_budgets WHERE scope = 'dataset' AND subject = ?").get(`sha256:${fp}`),
          `${at}: dataset without its budget`,
        ).toEqual({ n: 1 });
      }
  } finally {
    db.close();
  }
}

describe("kill -9 at every write point of the query road", () => {
  it("every kill leaves a consistent, verifiable room that keeps working", async () => {
    // 1. enumerate the points one full run hits, in order
    const traced = await run(path.join(dir, "trace.db"), "?");
    expect(traced.code, traced.stderr).toBe(0);
    const hits = tracedPoints(traced.stderr);
    expect(new Set(hits)).toEqual(new Set(FAULT_POINTS)); // every declared point is on the road
    // 2. kill at the first, a middle and the last hit of each point
    const kills: string[] = [];
    for (const p of FAULT_POINTS) {
      const n = hits.filter((h) => h === p).length;
      for (const k of new Set([1, Math.ceil(n / 2), n])) kills.push(`${p}@${k}`);
    }
    const data = studyRows(); // what the child uploads (same seed, same rows)
    let consistent = 0;
    await inBatches(kills, 2, async (k, i) => {
      const store = path.join(dir, `kill-${i}.db`);
      const killed = await run(store, k);
      expect(killed.signal, `${k} did not kill the child: ${killed.stderr}`).toBe("SIGKILL");
      checkRoom(store, k);
      // the room keeps working after the crash: the same work again, in this process
      const lab = openLab({ store, rng: { seed: "faults" }, budget: { epsilon: 4 } });
      setUp(lab, data);
      await query(lab).catch((e: unknown) => {
        if (!isCleanRoomError(e, "BUDGET_EXCEEDED")) throw e; // a late kill: the budget is spent, the refusal is correct
      });
      expect(lab.audit().verification.ok, k).toBe(true);
      lab.close();
      checkRoom(store, `${k} (after running again)`);
      consistent++;
    });
    expect(consistent).toBe(kills.length);
    console.log(`kill points: ${kills.length} (${FAULT_POINTS.length} write points), all consistent`);
  }, 600_000);

  it("two kernels querying one room at once: no false tamper finding, the ledger reconciles", async () => {
    const store = path.join(dir, "two-kernels.db");
    const lab = openLab({ store, rng: { seed: "faults" }, budget: { epsilon: 4 } });
    setUp(lab, studyRows());
    lab.close();
    const both = await Promise.all([run(store), run(store)]);
    for (const r of both) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe("DONE true");
    }
    checkRoom(store, "two kernels");
  }, 120_000);
});
