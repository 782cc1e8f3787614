/**
 * Enclave mode for a lab, as notebook verbs: data owners' keys go only to an attested
 * enclave, and the clean-room query runs inside it (issue 7 wired into the session;
 * notebook 04). These free functions are thin: the upload walks the session's one upload
 * road with the owner-sealed strategy, the query walks the session's one query road with the
 * attested-enclave executor (session/enclave-mode.ts, where the flow and its threat model are
 * described; owners in session/data-owner.ts, the operator in session/enclave-operator.ts).
 *
 *   enclaveUpload     the OWNER validates and serializes its table, keeps it, and hands the
 *                     operator only an owner-sealed blob; the operator catalogs metadata only.
 *   attestEnclave     launch the room's enclave; every owner verifies it against the image IT
 *                     computes and releases its key (refusals returned as data).
 *   enclaveQuery      the one road: purpose → approval/plan/cost → attest + key release (no
 *                     budget spent if refused) → atomic charge → execute + release INSIDE → audit.
 */
import type { StepReport, Steps } from "./steps.js";
import { invalid } from "./errors.js";
import { withMimeBundle } from "./display/bundle.js";
import { queryPayloadFromResult } from "./display/from-results.js";
import { internals, type Lab } from "./session/lab.js";
import { runQuery, type QueryPhase } from "./session/road.js";
import type { Party, QueryRequest, UploadOptions } from "./session/types.js";
import type { ApprovalStatus } from "./cleanroom/approvals.js";
import type { EnclaveAttestation, EnclaveAttestOptions, EnclaveQueryResult, EnclaveUploadReceipt } from "./session/enclave-types.js";
export type {
  EnclaveAttestation,
  EnclaveQueryResult,
  EnclaveUploadReceipt,
  EnclaveTamper,
  OwnerDecision,
  EnclaveAttestOptions,
} from "./session/enclave-types.js";
export { enclaveRoomViews, operatorHoldings, type EnclaveRoomViews } from "./enclave-room-views.js";

/**
 * Upload a party's table in enclave mode: validated and serialized on the owner's side, kept
 * there; the operator stores an owner-sealed blob (labelled by the purpose gate) and metadata.
 *
 * @example
 * enclaveUpload(lab, adv, "exposures", m.joinedA, { schema: liftSchemas().exposures, purposes: ["measurement"], rule: liftRules(100).exposures })
 */
export function enclaveUpload(lab: Lab, party: Party | string, name: string, rows: unknown, opts: UploadOptions): EnclaveUploadReceipt {
  const { room, enclave } = internals(lab);
  return room.upload(party, name, rows, opts, enclave().sealing());
}

/** {@link enclaveUpload} in steps (see steps.ts), for the upload verb's progress bar. */
export function enclaveUploadSteps(
  lab: Lab,
  party: Party | string,
  name: string,
  rows: unknown,
  opts: UploadOptions,
): Steps<EnclaveUploadReceipt> {
  const { room, enclave } = internals(lab);
  return room.uploadSteps(party, name, rows, opts, enclave().sealing());
}

/**
 * A data owner approves a template over enclave-mode (and/or plain) datasets.
 * @example approveEnclaveTemplate(lab, liftTemplate({ advertiser: "advertiser", retailer: "retailer" }), "retailer")
 */
export function approveEnclaveTemplate(lab: Lab, template: unknown, by: Party | string): ApprovalStatus {
  const { room, enclave } = internals(lab);
  return enclave().approve(template, room.requireParty(by, "by"));
}

/**
 * Launch the lab's enclave and run every owner's verifier + key-release policy for `purpose`.
 * Refusals are returned as data (`ok: false`, the failing check in `display`); on success the
 * enclave holds the keys and becomes the lab's current enclave for `enclaveQuery`.
 * `tamper`: "code" (workload changed by one byte), "template" (an unapproved template hash
 * measured in), "debug" (debugger attached). `ownersPin: "operatorClaim"` switches the
 * defence off: owners pin the image the operator reports instead of the one they compute —
 * then a tampered enclave gets the keys (and its query output shows what it leaks).
 *
 * @example
 * (await attestEnclave(lab, { purpose: "measurement" })).owners   // each owner: released
 * (await attestEnclave(lab, { purpose: "measurement", tamper: "code" })).ok   // false: ATTESTATION_MEASUREMENT
 */
export async function attestEnclave(lab: Lab, opts: EnclaveAttestOptions): Promise<EnclaveAttestation> {
  if (typeof opts !== "object" || opts === null) invalid("opts", "{ purpose, tamper?, debug?, datasets? }", opts);
  return attestationView(await internals(lab).enclave().attest(opts));
}

/**
 * {@link attestEnclave}, yielding to the event loop between its steps ("launch and measure",
 * then one "verify and release keys" step per dataset) and reporting each to `report`.
 *
 * @example await attestEnclaveAsync(lab, { purpose: "measurement" }, (s) => bar.report(s.done, s.total, s.phase))
 */
export async function attestEnclaveAsync(
  lab: Lab,
  opts: EnclaveAttestOptions,
  report?: (s: StepReport) => void,
): Promise<EnclaveAttestation> {
  if (typeof opts !== "object" || opts === null) invalid("opts", "{ purpose, tamper?, debug?, datasets? }", opts);
  return attestationView(await internals(lab).enclave().attest(opts, report));
}

/** Rows in the enclave-mode datasets an attestation would ask keys for (all of them by default). */
export function enclaveDatasetRows(lab: Lab, datasets?: readonly string[]): number {
  const cat = internals(lab).enclave().operator.catalog();
  return [...cat].filter(([k]) => !datasets || datasets.includes(k)).reduce((n, [, m]) => n + m.rows, 0);
}

function attestationView(out: EnclaveAttestation): EnclaveAttestation {
  return withMimeBundle(out, (r) => ({
    ...r.display,
    title: `${r.display.title} (${r.owners.filter((o) => o.outcome === "released").length}/${r.owners.length} owners released)`,
  }));
}

/**
 * An enclave-backed clean-room query (same request as `cleanRoomQuery`), down the session's
 * one road with the attested-enclave executor.
 *
 * @example
 * const r = await enclaveQuery(lab, { template: t, params: { startDay: 0, endDay: 27 }, as: { party: "advertiser", analyst: "bo" }, purpose: "measurement" })
 * r.rows; r.attestation.imageSha384
 */
export async function enclaveQuery(lab: Lab, req: QueryRequest, onPhase?: (name: QueryPhase) => void): Promise<EnclaveQueryResult> {
  const { room, enclave } = internals(lab);
  const out: EnclaveQueryResult = await runQuery(room, req, enclave().executor(), onPhase);
  return withMimeBundle(out, (x) => queryPayloadFromResult(x, { purpose: x.purpose, title: `Enclave query (${x.attestation.moduleId})` }));
}
