/**
 * The lift study the enclave-mode tests share (test/enclave/process.test.ts,
 * test/session/enclave-room.test.ts, test/server/enclave-room.test.ts): seeded rows keyed by the
 * normalised e-mail, the lift schemas and rules, uploading both tables into a lab, and awaiting a
 * typed refusal.
 */
import { generateStudy } from "../../kernel-lib/src/datasets/study.js";
import { normalizeEmail } from "../../kernel-lib/src/identity/normalize.js";
import { liftRules, liftSchemas } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { isCleanRoomError, type CleanRoomError } from "../../kernel-lib/src/errors.js";
import { enclaveUpload } from "../../kernel-lib/src/enclave-room.js";
import type { Lab } from "../../kernel-lib/src/session.js";

export const schemas = liftSchemas();
export const rules = liftRules(20);
/** The advertiser's analyst asking for measurement over the study's four weeks. */
export const REQ = { params: { startDay: 0, endDay: 27 }, as: { party: "advertiser", analyst: "bo" }, purpose: "measurement" };

export interface KeyedStudy {
  exposures: Record<string, unknown>[];
  purchases: Record<string, unknown>[];
  /** Every identifier of either party (join keys, and the e-mails inside them): what must never leak. */
  canaries: string[];
}

/** The seeded study (1500 advertiser rows) with join key = normalised e-mail (a stand-in for PSI keys; distinctive strings to search for). */
export function keyedStudy(seed: string): KeyedStudy {
  const study = generateStudy({ seed, advertiserRows: 1500, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 40 });
  const keyed = (rows: { email: string }[]): Record<string, unknown>[] =>
    rows.flatMap(({ email, ...rest }) => {
      const n = normalizeEmail(email);
      return n.ok ? [{ ...rest, join_key: `jk:${n.value}` }] : [];
    });
  const exposures = keyed(study.exposures as never);
  const purchases = keyed(study.purchases as never);
  return { exposures, purchases, canaries: [...new Set([...exposures, ...purchases].map((r) => String(r.join_key)))] };
}

/**
 * Upload the study's two tables — owner-sealed for the enclave ("enclave") or through the purpose
 * gate ("plain") — with their lift rules, and declare the analyst's measurement purpose.
 */
export function uploadStudy(lab: Lab, s: KeyedStudy, mode: "plain" | "enclave"): Lab {
  const up = (party: string, name: string, rows: unknown[], schema: unknown, rule: unknown) => {
    const o = { schema, purposes: ["measurement"], rule } as never;
    if (mode === "enclave") enclaveUpload(lab, lab.party(party), name, rows, o);
    else lab.upload(lab.party(party), name, rows as never, o);
  };
  up("advertiser", "exposures", s.exposures, schemas.exposures, rules.exposures);
  up("retailer", "purchases", s.purchases, schemas.purchases, rules.purchases);
  lab.declarePurpose({ party: "advertiser", analyst: "bo", purpose: "measurement", justification: "campaign lift" });
  return lab;
}

/** The CleanRoomError `p` rejects with; fails if it resolves or rejects with anything else. */
export async function refusal(p: Promise<unknown>): Promise<CleanRoomError> {
  try {
    await p;
  } catch (e) {
    if (isCleanRoomError(e)) return e;
    throw e;
  }
  throw new Error("expected a refusal");
}
