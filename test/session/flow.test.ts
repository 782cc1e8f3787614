import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { generateStudy } from "../../kernel-lib/src/datasets/study.js";
import { runPsi } from "../../kernel-lib/src/identity/run-psi.js";
import { liftRules, liftSchemas, liftTemplate, toLiftAggregates } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { liftFromRelease } from "../../kernel-lib/src/studies/release.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { openLab } from "../../kernel-lib/src/session.js";
import { internals } from "../../kernel-lib/src/session/lab.js";

function withJoinKeys<T extends { email: string }>(rows: T[], keys: (string | null)[]) {
  const out: Record<string, unknown>[] = [];
  rows.forEach((r, i) => {
    const k = keys[i];
    if (k === null || k === undefined) return;
    const { email: _drop, ...rest } = r;
    out.push({ ...rest, join_key: k });
  });
  return out;
}

describe("thin path: PSI join keys → approved query → noised, budgeted result → lift", () => {
  it("runs end to end, charges the budget once, and recovers the stated lift within its CI", async () => {
    const study = generateStudy({
      seed: "flow-test",
      advertiserRows: 6000,
      overlap: 0.7,
      holdoutShare: 0.3,
      baseConversionRate: 0.1,
      liftPct: 40,
    });
    const psi = await runPsi(study.exposures, study.purchases, {
      mode: "joinKeys",
      backend: "libsodium",
      threads: 1,
      rng: { seed: "flow-psi" },
      names: { a: "advertiser", b: "retailer" },
    });
    expect(psi.matchReport.intersectionSize).toBe(study.groundTruth.counts.trueOverlap);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "crl-flow-"));
    const store = path.join(dir, "room.db");
    const lab = openLab({ store, rng: { seed: "flow" }, budget: { epsilon: 3 } });
    const adv = lab.party("advertiser");
    const ret = lab.party("retailer");
    const schemas = liftSchemas();
    lab.upload(adv, "exposures", withJoinKeys(study.exposures, psi.joinKeysA!), {
      schema: schemas.exposures,
      purposes: ["measurement"],
      rule: liftRules(100).exposures,
    });
    lab.upload(ret, "purchases", withJoinKeys(study.purchases, psi.joinKeysB!), {
      schema: schemas.purchases,
      purposes: ["measurement"],
      rule: liftRules(100).purchases,
    });
    lab.declarePurpose({ party: adv, analyst: "bo", purpose: "measurement", justification: "campaign lift" });

    const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.5", threshold: 100 });
    expect(lab.approveTemplate(t, adv).approved).toBe(false);
    expect(lab.approveTemplate(t, ret).approved).toBe(true);

    const r = await lab.cleanRoomQuery({
      template: t,
      params: { startDay: 0, endDay: 27 },
      as: { party: "advertiser", analyst: "bo" },
      purpose: "measurement",
    });
    expect(r.rngStamp.rngMode).toBe("seeded");
    expect(r.charged).not.toBeNull();
    expect(r.trace.map((s) => s.status)).not.toContain("refused");
    const lift = liftFromRelease(toLiftAggregates(r), { threshold: 100 });
    const est = lift.cohorts[0]!.result!;
    const ci = est.converters.ci!.relativeLift!;
    expect(ci[0]).toBeLessThan(study.groundTruth.truth.converters.relativeLift);
    expect(ci[1]).toBeGreaterThan(study.groundTruth.truth.converters.relativeLift);

    const spent = lab.budget().budgets.find((b) => b.scope === "collaboration")!;
    expect(spent.spent.text).not.toBe(spent.total.text);
    lab.close();

    // a kernel restart: same file, the spend and the sealed data are still there
    const again = openLab({ store, rng: { seed: "flow" }, budget: { epsilon: 3 } });
    const after = again.budget().budgets.find((b) => b.scope === "collaboration")!;
    expect(after.spent).toEqual(spent.spent);
    again.declarePurpose({ party: "advertiser", analyst: "bo", purpose: "measurement", justification: "again" });
    // 2.5 of 3 is spent: the same query again is refused by the restarted kernel, nothing charged
    await expect(
      again.cleanRoomQuery({
        template: t,
        params: { startDay: 0, endDay: 27 },
        as: { party: "advertiser", analyst: "bo" },
        purpose: "measurement",
      }),
    ).rejects.toThrow(/BUDGET_EXCEEDED.*Requested: ε = 2\.5\. Remaining: ε = 0\.5\. Difference: ε = 2/);
    expect(again.budget().budgets.find((b) => b.scope === "collaboration")!.spent).toEqual(spent.spent);
    expect(again.audit().verification.ok).toBe(true);
    again.close();
  });

  it("refuses a query under a purpose the data was not tagged for, before charging anything", async () => {
    const lab = openLab({ store: ":memory:", rng: { seed: "deny" }, budget: { epsilon: 1 } });
    lab.party("advertiser");
    lab.party("retailer");
    const s = liftSchemas();
    lab.upload(
      "advertiser",
      "exposures",
      [
        {
          join_key: "k1",
          group: "test",
          reached: 1,
          impressions: 2,
          first_exposure_day: 1,
          region: "north",
          age_band: "25-34",
          channel: "search",
        },
      ],
      { schema: s.exposures, purposes: ["measurement"], rule: liftRules(100).exposures },
    );
    lab.upload("retailer", "purchases", [{ join_key: "k1", purchase_day: 3, value_cents: 100, store_region: "north", category: "shoes" }], {
      schema: s.purchases,
      purposes: ["measurement"],
      rule: liftRules(100).purchases,
    });
    lab.declarePurpose({ party: "advertiser", analyst: "bo", purpose: "research", justification: "curiosity" });
    const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.5" });
    lab.approveTemplate(t, "advertiser");
    lab.approveTemplate(t, "retailer");
    const before = JSON.stringify(internals(lab).room.ledger.status(lab.roomId));
    try {
      await lab.cleanRoomQuery({
        template: t,
        params: { startDay: 0, endDay: 27 },
        as: { party: "advertiser", analyst: "bo" },
        purpose: "research",
      });
      expect.unreachable();
    } catch (e) {
      expect(isCleanRoomError(e)).toBe(true);
      const trace = (e as { details: { trace: { step: string; status: string }[] } }).details.trace;
      expect(trace.find((s) => s.status === "refused")!.step).toBe("purpose");
    }
    expect(JSON.stringify(internals(lab).room.ledger.status(lab.roomId))).toBe(before);
    const entries = lab.audit().entries as { action: string; outcome: string; who: { party: string } }[];
    expect(entries.some((x) => x.outcome === "refused")).toBe(true);
    // approvals are audited too, one entry per owner
    expect(
      entries
        .filter((x) => x.action === "approveTemplate" && x.outcome === "granted")
        .map((x) => x.who.party)
        .sort(),
    ).toEqual(["advertiser", "retailer"]);
  });
});

describe("the audit chain across a kernel restart", () => {
  it("deleting the newest audit rows is caught after a restart (head kept outside the database)", async () => {
    const Database = (await import("better-sqlite3")).default;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "crl-anchor-"));
    const store = path.join(dir, "room.db");
    const lab = openLab({ store, rng: { seed: "anchor" } });
    lab.party("advertiser");
    for (let i = 0; i < 3; i++)
      lab.declarePurpose({ party: "advertiser", analyst: "bo", purpose: "measurement", justification: `quarterly review ${i}` });
    expect(lab.audit().verification.ok).toBe(true); // signs the head over 3 entries
    lab.close();
    const db = new Database(store);
    // the attacker deletes the newest entry and every signed head stored in the database
    db.prepare("DELETE FROM purpose_audit_log WHERE seq = (SELECT MAX(seq) FROM purpose_audit_log)").run();
    db.prepare("DELETE FROM purpose_audit_heads").run();
    db.close();
    const again = openLab({ store, rng: { seed: "anchor" } });
    const v = again.audit().verification;
    expect(v.ok).toBe(false);
    expect(v.problem).toBe("truncated");
    again.close();
  });
});
