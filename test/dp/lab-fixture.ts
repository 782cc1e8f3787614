/**
 * A small DP room for the integrity tests (issue 14): two parties, a lift template, no PSI
 * (join keys are assigned directly — these tests are about budgets and the audit chain).
 */
import { generateStudy } from "../../kernel-lib/src/datasets/study.js";
import { liftRules, liftSchemas, liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import type { Lab } from "../../kernel-lib/src/session.js";

export function studyRows(seed = "integrity", rows = 600) {
  const study = generateStudy({ seed, advertiserRows: rows, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 40 });
  const ids = new Map<string, string>();
  const key = (e: string) => {
    if (!ids.has(e)) ids.set(e, `jk${ids.size}`);
    return ids.get(e)!;
  };
  const strip = <T extends { email: string }>(r: T) => {
    const { email, ...rest } = r;
    return { ...rest, join_key: key(email) };
  };
  return { exposures: study.exposures.map(strip), purchases: study.purchases.map(strip) };
}

export const TEMPLATE = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.25", threshold: 5 });

/** Parties, datasets (skipped when already there), grant and approvals: idempotent on a reopened room. */
export function setUp(lab: Lab, data = studyRows()): void {
  const adv = lab.party("advertiser");
  const ret = lab.party("retailer");
  const s = liftSchemas();
  if (!lab.datasets(adv).length)
    lab.upload(adv, "exposures", data.exposures, { schema: s.exposures, purposes: ["measurement"], rule: liftRules(5).exposures });
  if (!lab.datasets(ret).length)
    lab.upload(ret, "purchases", data.purchases, { schema: s.purchases, purposes: ["measurement"], rule: liftRules(5).purchases });
  lab.declarePurpose({ party: adv, analyst: "bo", purpose: "measurement", justification: "campaign lift" });
  lab.approveTemplate(TEMPLATE, adv);
  lab.approveTemplate(TEMPLATE, ret);
}

export const query = (lab: Lab) =>
  lab.cleanRoomQuery({
    template: TEMPLATE,
    params: { startDay: 0, endDay: 27 },
    as: { party: "advertiser", analyst: "bo" },
    purpose: "measurement",
  });
