/**
 * Attestation outcomes as display-ready plain data, in the shape of the `attestation` MIME
 * payload (display/schema.ts `AttestationPayload`): the document's fields in display order,
 * every verifier check as ok / failed / skipped (checks after the first failure were not
 * reached), whether it verified, and what happened to the key.
 *
 * The enclave layer sits below display, so this module builds the object without importing
 * the schema; the session passes it to the display layer, which validates it.
 */
import { isCleanRoomError } from "../errors.js";
import type { RngStamp } from "../rng.js";
import { TEACHING_LABEL } from "../rng.js";
import { decodeDocument, type AttestationDocument } from "./document.js";
import { CHECK_ORDER, type VerifiedAttestation } from "./verifier.js";

export const CHECK_TITLES: Record<(typeof CHECK_ORDER)[number], string> = {
  structure: "document is well formed (Nitro fields, SHA384)",
  pinnedRoot: "certificate bundle ends at the pinned lab root",
  signature: "module certificate and document signature verify",
  replay: "document not seen before (no replay)",
  nonce: "nonce is the fresh challenge issued for this request",
  freshness: "timestamp within the window",
  debug: "not a debug enclave",
  measurement: "measurement (PCRs) allowed by the policy",
  channelKey: "channel key is the one in the signed document",
  purpose: "declared purpose matches the data's purpose",
};

export interface AttestationDisplay {
  kind: "attestation";
  version: 1;
  title?: string;
  rngMode?: "secure" | "seeded";
  label?: string;
  document: { name: string; value: string | number | boolean | null }[];
  checks: { name: string; status: "ok" | "failed" | "skipped"; reason?: string }[];
  verified: boolean;
  keyRelease: { outcome: "released" | "denied" | "not-requested"; reason?: string };
}

const short = (s: string | null, n = 24) => (s === null ? null : s.length > n ? `${s.slice(0, n)}…` : s);

/**
 * Build the display payload for one attestation attempt. `outcome` is the verifier's result
 * or the error it threw; `keyRequested` says whether a key release was part of the attempt.
 *
 * @example
 * try { const g = kms.releaseKey(req, rng); attestationDisplay(req.document, { grantedTo: g.datasetId }) }
 * catch (e) { attestationDisplay(req.document, { error: e }) }
 */
export function attestationDisplay(
  document: AttestationDocument,
  outcome: { verified: VerifiedAttestation; keyRequested?: boolean } | { grantedTo: string } | { error: unknown; keyRequested?: boolean },
  opts: { title?: string; rngStamp?: RngStamp } = {},
): AttestationDisplay {
  let fields: AttestationDisplay["document"];
  try {
    const p = decodeDocument(document);
    fields = [
      { name: "module_id", value: p.module_id },
      { name: "digest", value: p.digest },
      { name: "timestamp", value: new Date(p.timestamp).toISOString() },
      ...Object.keys(p.pcrs)
        .sort((a, b) => Number(a) - Number(b))
        .map((k) => ({ name: k === "0" ? "pcr0 (ImageSha384)" : `pcr${k}`, value: short(p.pcrs[k]!, 32) })),
      { name: "debug", value: p.debug },
      { name: "purpose", value: p.purpose },
      { name: "public_key", value: short(p.public_key) },
      { name: "nonce", value: short(p.nonce) },
      { name: "user_data", value: short(p.user_data) },
    ];
  } catch {
    fields = [{ name: "document", value: "malformed (cannot be decoded)" }];
  }
  const out: AttestationDisplay = {
    kind: "attestation",
    version: 1,
    document: fields,
    checks: [],
    verified: false,
    keyRelease: { outcome: "not-requested" },
  };
  if (opts.title !== undefined) out.title = opts.title;
  if (opts.rngStamp) {
    out.rngMode = opts.rngStamp.rngMode;
    if (opts.rngStamp.rngMode === "seeded") out.label = TEACHING_LABEL;
  }
  if ("error" in outcome) {
    const e = outcome.error;
    const failedAt = !isCleanRoomError(e)
      ? null
      : typeof e.details.check === "string"
        ? e.details.check
        : e.code === "ATTESTATION_INVALID"
          ? "structure"
          : null;
    const reason = isCleanRoomError(e) ? `${e.code}: ${(e.details.reason as string | undefined) ?? e.message}` : String(e);
    let reached = failedAt !== null;
    for (const c of CHECK_ORDER) {
      if (c === failedAt) {
        out.checks.push({ name: CHECK_TITLES[c], status: "failed", reason });
        reached = false;
      } else out.checks.push({ name: CHECK_TITLES[c], status: reached ? "ok" : "skipped" });
    }
    if (failedAt === null) out.checks.push({ name: "key release", status: "failed", reason });
    out.keyRelease =
      outcome.keyRequested === false ? { outcome: "not-requested" } : { outcome: "denied", reason: isCleanRoomError(e) ? e.code : "error" };
    return out;
  }
  for (const c of CHECK_ORDER) out.checks.push({ name: CHECK_TITLES[c], status: "ok" });
  out.verified = true;
  if ("grantedTo" in outcome)
    out.keyRelease = { outcome: "released", reason: `data key for ${outcome.grantedTo} sealed to the attested key` };
  else if (outcome.keyRequested) out.keyRelease = { outcome: "released" };
  return out;
}
