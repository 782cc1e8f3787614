/**
 * The secret-shared lift down the room's road: same approval, same cost, same ledger charge and
 * audit as the clean room's release of the same template; a room that holds no row.
 */
import { describe, expect, it } from "vitest";
import { addParty, approveTemplate, declarePurpose, openLab, upload } from "../../kernel-lib/src/verbs/room.js";
import { audit, budget } from "../../kernel-lib/src/verbs/ledger.js";
import { cleanRoomQuery as _q } from "../../kernel-lib/src/verbs/query.js";
import { liftRules, liftSchemas, toLiftAggregates } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { registerForMpc, secretSharedLift } from "../../kernel-lib/src/session/mpc-mode.js";
import { oracleLiftAggregates } from "../../kernel-lib/src/studies/oracle.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { matchedStudy, noisyTemplate, PARAMS } from "./fixtures.js";

const fix = await matchedStudy("mpc-room", 3000);

async function room(seed: string, withRows: boolean) {
  const lab = openLab({ store: ":memory:", rng: { seed }, budget: { epsilon: 20 } });
  addParty(lab, { party: "advertiser" });
  addParty(lab, { party: "retailer" });
  const s = liftSchemas();
  const r = liftRules(100);
  const ex = { party: "advertiser", name: "exposures", schema: s.exposures, purposes: ["measurement"], rule: r.exposures };
  const pu = { party: "retailer", name: "purchases", schema: s.purchases, purposes: ["measurement"], rule: r.purchases };
  if (withRows) {
    await upload(lab, { ...ex, rows: fix.adv });
    await upload(lab, { ...pu, rows: fix.ret });
  } else {
    const entries = [registerForMpc(lab, ex), registerForMpc(lab, pu)];
    expect(entries.map((e) => e.rows)).toEqual([0, 0]); // the room holds schemas and rules, no row
  }
  declarePurpose(lab, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "lift" });
  return lab;
}

describe("secret-shared lift in the room (same road, same ledger)", () => {
  it("charges exactly what the clean room charges for the same template, audited and reconciled; noise inside", async () => {
    const t = noisyTemplate("0.5");
    const clean = await room("cr", true);
    const mpc = await room("mpc", false);
    for (const lab of [clean, mpc]) for (const party of ["advertiser", "retailer"]) approveTemplate(lab, { template: t, party });
    const a = await _q(clean, { template: t, params: PARAMS, party: "advertiser", analyst: "bo", purpose: "measurement" });
    const b = await secretSharedLift(mpc, {
      template: t,
      params: PARAMS,
      party: "advertiser",
      analyst: "bo",
      purpose: "measurement",
      advertiserRows: fix.adv,
      retailerRows: fix.ret,
    });
    expect(b.charged!.text).toBe(a.charged!.text);
    const spent = (lab: typeof clean) =>
      budget(lab)
        .budgets.filter((x) => x.scope !== "dataset")
        .map((x) => [x.scope, x.subject, x.spent]);
    expect(spent(mpc)).toEqual(spent(clean));
    const au = audit(mpc);
    expect(au.verification.ok).toBe(true);
    expect(b.trace.map((s) => s.step)).toEqual(a.trace.map((s) => s.step));
    // the noisy release is near the exact oracle, with twice the clean room's per-aggregate variance
    const o = oracleLiftAggregates(fix.study.exposures, fix.study.purchases, { maxConversionsPerPerson: 4 }).cohorts[0]!.aggregates;
    const [m] = toLiftAggregates(b);
    const [c] = toLiftAggregates(a);
    expect(m!.noiseVariance.converters).toBeCloseTo(2 * c!.noiseVariance.converters, 9);
    for (const k of ["testPopulation", "controlPopulation", "testConverters", "controlConverters"] as const)
      expect(Math.abs(m![k]! - o[k])).toBeLessThan(12 * Math.sqrt(m!.noiseVariance.converters));
    expect(b.mpc.bytes.total).toBeGreaterThan(0);
  });

  it("refuses a different matched set before any budget is spent", async () => {
    const t = noisyTemplate("0.5");
    const mpc = await room("mpc2", false);
    for (const party of ["advertiser", "retailer"]) approveTemplate(mpc, { template: t, party });
    const before = JSON.stringify(budget(mpc).budgets.map((x) => x.spent));
    const retailerRows = fix.ret.filter((r) => r.join_key !== fix.adv[0]!.join_key);
    try {
      await secretSharedLift(mpc, {
        template: t,
        params: PARAMS,
        party: "advertiser",
        analyst: "bo",
        purpose: "measurement",
        advertiserRows: fix.adv,
        retailerRows,
      });
      expect.unreachable();
    } catch (e) {
      expect(isCleanRoomError(e, "INPUT_INVALID")).toBe(true);
      expect((e as Error).message).toMatch(/retailerRows.join_key/);
    }
    expect(JSON.stringify(budget(mpc).budgets.map((x) => x.spent))).toBe(before);
  });

  it("refuses a requester that is not one of the two computing parties, before any charge", async () => {
    const t = noisyTemplate("0.5");
    const mpc = await room("mpc3", false);
    addParty(mpc, { party: "agency" });
    for (const party of ["advertiser", "retailer"]) approveTemplate(mpc, { template: t, party });
    const input = {
      template: t,
      params: PARAMS,
      party: "agency",
      analyst: "bo",
      purpose: "measurement",
      advertiserRows: fix.adv,
      retailerRows: fix.ret,
    };
    const before = JSON.stringify(budget(mpc).budgets.map((x) => x.spent));
    await expect(secretSharedLift(mpc, input)).rejects.toMatchObject({ code: "ACCESS_DENIED" });
    expect(JSON.stringify(budget(mpc).budgets.map((x) => x.spent))).toBe(before);
  });
});
