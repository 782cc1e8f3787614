/**
 * @cleanroom-lab/kernel — the notebook surface.
 *
 * What a notebook cell imports: open a simulated clean room, match identities with PSI,
 * declare purposes, approve templates, run budgeted DP queries, study lift, attest enclaves,
 * read the budget and the audit chain. Every verb returns plain data that prints readably as
 * text and renders as a rich output (MIME `application/vnd.cleanroom-lab.v1+json` with HTML
 * and text fallbacks) when it is the last expression of a cell run by the `cleanroom-ts`
 * kernel. Seeded labs label every result "teaching mode — not private".
 *
 * @example
 * import { openLab, psiMatch, declarePurpose, approveTemplate, cleanRoomQuery, budget } from "@cleanroom-lab/kernel";
 * const lab = openLab({ store: "./study.db", rng: { seed: "week-1" }, budget: { epsilon: 3 } });
 */
import { isCleanRoomError } from "./errors.js";
import { rngStamp, type RngStamp } from "./rng.js";
import { type Lab, type Party, type QueryRequest, type CleanRoomResult } from "./session.js";
import { attachJoinKeys, runPsi, type PsiRunResult, type RunPsiOptions } from "./identity/run-psi.js";
import { toLiftAggregates } from "./cleanroom/templates/lift.js";
import { liftFromRelease, type ReleasedLiftResult } from "./studies/release.js";
import { withMimeBundle } from "./display/bundle.js";
import { auditPayloadFromReport, liftPayloadFromResult, psiPayloadFromRun, queryPayloadFromResult, refusedQueryPayload } from "./display/from-results.js";
import { budgetPayloadFromLedger } from "./display/from-ledger.js";
import type { PurposeGrant } from "./purpose/policy.js";
import type { ApprovalStatus } from "./cleanroom/approvals.js";
import type { PrivacyCost } from "./dp/accountant.js";
import type { AccuracyTarget, BudgetReport } from "./dp/planner.js";
import type { TraceStepName } from "./display/schema.js";
import { refusalValue } from "./display/refusal.js";

// ---------------------------------------------------------------- the room

export { Lab, openLab, type OpenLabOptions, type Party, type QueryRequest, type CleanRoomResult, type UploadOptions, type UploadReceipt } from "./session.js";
export { CleanRoomError, isCleanRoomError, ERROR_CODES, type ErrorCode } from "./errors.js";
export { seededRng, secureRng, makeRng, rngStamp, TEACHING_LABEL, type Rng, type RngStamp } from "./rng.js";

// ---------------------------------------------------------------- building blocks a notebook uses directly

export { generateStudy, streamStudy, type GeneratedStudy } from "./datasets/study.js";
export type { StudyParams } from "./datasets/params.js";
export { writeStudyFiles, readStudyFiles } from "./datasets/files.js";
export { oracleLiftAggregates } from "./studies/oracle.js";
export { computeLift, computeGroupedLift, type LiftResult } from "./studies/lift.js";
export { liftTemplate, liftSchemas, liftRules } from "./cleanroom/templates/lift.js";
export { templateHash, templateCost, THRESHOLD_PRESETS } from "./cleanroom/template.js";
export { normalizeEmail, normalizePhone, normalizeColumn } from "./identity/normalize.js";
export { sha256Email, emailDictionary, dictionaryAttack, naivePsiBlind, realPsiBlind, knownPairAttack, cardinalityMembershipAttack } from "./identity/attacks.js";
export { generateIdentityGraph, IdentityProvider, crosswalk } from "./identity/crosswalk.js";
export { SecureChannel } from "./crypto/channel.js";
export { pureDp, approxDp, zCdp, costText } from "./dp/accountant.js";
export { epsilonForAccuracy, whatRemainingBuys, compareAccountants } from "./dp/planner.js";
export { sampleDiscreteLaplace, sampleDiscreteGaussian, laplaceScaleFor } from "./dp/mechanisms.js";
export { attestationLab, demoAttestationRefusals, demoOperatorVsEnclaveView } from "./enclave/demos.js";
export { demoDifferencingAttack } from "./enclave/differencing.js";
export { show, toMimeBundle, display } from "./display/bundle.js";
export { CLEANROOM_MIME } from "./display/schema.js";

// ---------------------------------------------------------------- teaching labs and lower-level pieces
// (attack simulations, the purpose table, template design previews, enclave-backed room)

export * from "./labs/purpose-lab.js";
export { previewTemplate, noiseHalfWidth, budgetSpent, sameCost, type TemplatePreview, type PreviewNoise } from "./labs/design.js";
export { attackPopulation, cohortTemplate, trackers, exactCohort, dpGuessBound, trackerAccuracy, refreshAveraging, reconstructionAttack, adhImpressions, LAB_REGIONS, type LabCustomer, type CohortParams, type AccuracyPoint, type RefreshMonth, type ReconstructionPoint } from "./labs/attacks-lab.js";
export { lineChart, type LineChart, type ChartPoint } from "./labs/lab-chart.js";
export { runPsi, attachJoinKeys, type RunPsiOptions, type PsiRunResult } from "./identity/run-psi.js";
export { CrosswalkJoiner } from "./identity/crosswalk.js";
export { randomScalar } from "./identity/psi-backend.js";
export { x25519KeyPair } from "./crypto/primitives.js";
export { enclaveUpload, approveEnclaveTemplate, attestEnclave, enclaveQuery, enclaveRoomViews, operatorHoldings, type EnclaveAttestation, type EnclaveQueryResult, type EnclaveUploadReceipt, type EnclaveRoomViews, type EnclaveTamper } from "./enclave-room.js";
export { measureEnclaveCost, type EnclaveCostReport } from "./enclave/cost.js";
export { approvedWorkload as demoCohortWorkload, demoPeople, peopleCsv, DEMO_PURPOSE, DEMO_TEMPLATE_HASH } from "./enclave/demoWorkload.js";
export type { TemplateInput } from "./cleanroom/template.js";

let psiSessions = 0;

/** One side of a PSI: the party and its rows (objects with an identifier column, or strings). */
export interface PsiSide {
  party: Party | string;
  rows: readonly object[] | readonly string[];
  /** Identifier column (default "email"). */
  column?: string;
}

/** What `psiMatch` returns: the protocol run plus each side's rows keyed by join key. */
export interface PsiMatch extends Omit<PsiRunResult, "messages"> {
  /** A's rows with `join_key` added and the identifier column removed; unmatched rows dropped. */
  joinedA: Record<string, unknown>[] | null;
  joinedB: Record<string, unknown>[] | null;
}

function partyName(p: Party | string): string {
  return typeof p === "string" ? p : p?.name;
}

function attachKeys(rows: readonly unknown[], keys: (string | null)[] | null, column: string): Record<string, unknown>[] | null {
  if (!keys) return null;
  const objects = rows.filter((r): r is Record<string, unknown> => typeof r === "object" && r !== null);
  if (objects.length !== rows.length) return null; // string rows: nothing to attach to
  return attachJoinKeys(objects, keys, { column, keepUnmatched: false });
}

/**
 * Private Set Intersection (ECDH on ristretto255, RFC 9380 hash-to-curve) between two
 * parties. Default mode `joinKeys`: both sides learn a common pseudonym per matched record
 * and get their rows back keyed by it, ready to `upload`; no identifier crosses.
 *
 * @example
 * const m = await psiMatch({ party: advertiser, rows: study.exposures }, { party: retailer, rows: study.purchases }, { lab });
 * m.matchReport.partyA.matchRate
 */
export async function psiMatch(a: PsiSide, b: PsiSide, options: RunPsiOptions & { lab?: Lab } = {}): Promise<PsiMatch> {
  const { lab, ...opts } = options ?? {};
  const colA = a?.column ?? opts.column ?? "email";
  const colB = b?.column ?? opts.column ?? "email";
  // each side may name its identifier column differently: hand runPsi the identifiers only
  const ids = (rows: unknown, col: string) => (Array.isArray(rows) ? rows.map((r) => (r !== null && typeof r === "object" ? (r as Record<string, unknown>)[col] : r)) : rows);
  const run = await runPsi(ids(a?.rows, colA) as unknown[], ids(b?.rows, colB) as unknown[], {
    ...opts,
    names: opts.names ?? { a: partyName(a?.party) ?? "A", b: partyName(b?.party) ?? "B" },
    ...(lab && !opts.rng ? { rng: lab.rng.fork(`psi:${++psiSessions}`), sessionLabel: opts.sessionLabel ?? lab.roomId } : {}),
  });
  const { messages: _m, ...rest } = run;
  const result: PsiMatch = { ...rest, joinedA: attachKeys(a.rows, run.joinKeysA, colA), joinedB: attachKeys(b.rows, run.joinKeysB, colB) };
  return withMimeBundle(result, (r) => psiPayloadFromRun(r as PsiRunResult, { title: `PSI (${r.mode})` }));
}

/**
 * Declare a purpose: a signed grant for one analyst of one party (audited).
 *
 * @example
 * declarePurpose(lab, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "Q3 campaign lift" })
 */
export function declarePurpose(lab: Lab, input: Parameters<Lab["declarePurpose"]>[0]): PurposeGrant {
  const g = lab.declarePurpose(input);
  return withMimeBundle({ ...g }, (x) => ({
    kind: "purpose", version: 1, title: "Purpose grant", ...lab.stamp,
    grants: [{ party: x.who.party, purpose: x.purpose, expires: x.expiresAt, status: "active" as const }],
    decisions: [],
  }));
}

/**
 * A data owner approves a template; it runs once every owner of its inputs approved.
 * @example approveTemplate(lab, liftTemplate({ advertiser: "advertiser", retailer: "retailer" }), "retailer")
 */
export function approveTemplate(lab: Lab, template: unknown, by: Party | string): ApprovalStatus {
  return lab.approveTemplate(template, by);
}

/**
 * Run an approved template under a declared purpose; the result is noised, thresholded,
 * charged to the budget and audited. A refusal throws a CleanRoomError whose
 * `details.trace` says where — wrap in {@link attempt} to display it instead.
 *
 * @example
 * const r = await cleanRoomQuery(lab, { template: t, params: { startDay: 0, endDay: 27 }, as: { party: "advertiser", analyst: "bo" }, purpose: "measurement" })
 */
export async function cleanRoomQuery(lab: Lab, req: QueryRequest): Promise<CleanRoomResult> {
  const r = await lab.cleanRoomQuery(req);
  return withMimeBundle({ ...r }, (x) => queryPayloadFromResult(x, { purpose: x.purpose }));
}

/** What `attempt` returns for a refused call. */
export interface Refusal {
  ok: false;
  code: string;
  message: string;
  field?: string;
  trace: { step: TraceStepName; status: "ok" | "refused" | "skipped"; reason?: string }[] | null;
}

/**
 * Run a call that may be refused; return its result, or a displayable refusal that shows the
 * "why blocked" trace (which step refused and why). Non-library errors are re-thrown.
 *
 * @example
 * await attempt(() => cleanRoomQuery(lab, { ...req, purpose: "research" }))   // → refused at "purpose"
 */
export async function attempt<T>(call: () => T | Promise<T>): Promise<T | Refusal> {
  try {
    return await call();
  } catch (e) {
    if (!isCleanRoomError(e)) throw e;
    return refusalValue(e); // display/refusal.ts: the same view the kernel shows for an uncaught refusal
  }
}

/** What `liftStudy` returns. */
export interface LiftStudy {
  query: CleanRoomResult;
  lift: ReleasedLiftResult;
  groundTruth?: { lift: number; incrementalConversions?: number };
  rngStamp: RngStamp;
}

/**
 * Run an approved lift template (see `liftTemplate`) and estimate lift with confidence
 * intervals that include the DP noise variance (fbpcs Private Lift metric names).
 *
 * @example
 * const s = await liftStudy(lab, { template: t, params: { startDay: 0, endDay: 27 }, as, purpose: "measurement",
 *   groundTruth: { lift: study.groundTruth.truth.converters.relativeLift } })
 */
export async function liftStudy(lab: Lab, req: QueryRequest & { threshold?: number; groundTruth?: { lift: number; incrementalConversions?: number } }): Promise<LiftStudy> {
  const { threshold, groundTruth, ...q } = req;
  const query = await lab.cleanRoomQuery(q);
  const released = toLiftAggregates(query);
  const lift = liftFromRelease(released, { threshold: threshold ?? query.suppressed.minimum });
  const out: LiftStudy = { query, lift, ...(groundTruth ? { groundTruth } : {}), rngStamp: query.rngStamp };
  return withMimeBundle(out, (s) => {
    const first = s.lift.cohorts.find((c) => c.result) ?? s.lift.cohorts[0];
    const noise = released.find((c) => c.cohort === first?.cohort)?.noiseVariance.converters ?? 0;
    if (!first?.result) return { kind: "error", version: 1, code: "THRESHOLD_NOT_MET", field: "lift", message: "every cohort was suppressed: no lift can be released" };
    return liftPayloadFromResult(first.result, {
      title: first.cohort ? `Lift — ${first.cohort}` : "Lift (exposed vs holdout)", converterNoiseVariance: noise, rngStamp: s.rngStamp,
      ...(s.groundTruth ? { groundTruth: s.groundTruth } : {}),
    });
  });
}

/**
 * The room's privacy budgets: spent, remaining, history, and what the remaining budget buys.
 * @example budget(lab, { queries: [{ name: "lift", cost: pureDp("2.5") }] })
 */
export function budget(lab: Lab, opts: { queries?: { name: string; cost: PrivacyCost }[]; target?: AccuracyTarget } = {}): BudgetReport & RngStamp {
  const r = lab.budget(opts);
  return withMimeBundle(r, (x) => {
    const p = budgetPayloadFromLedger(x, { title: `Privacy budget — ${x.roomId}`, ...rngStamp(lab.rng) });
    // what the remaining budget buys, per named query (computed by the planner, exact)
    return { ...p, budgets: p.budgets.map((b, i) => (x.budgets[i]?.buys.length ? { ...b, buys: x.budgets[i]!.buys } : b)) };
  });
}

/**
 * Verify the hash-chained audit log and show it with the misuse review.
 * @example audit(lab).verification.ok
 */
export function audit(lab: Lab, opts: { limit?: number } = {}): ReturnType<Lab["audit"]> {
  const r = lab.audit(opts);
  return withMimeBundle({ ...r }, (x) => auditPayloadFromReport(x, { title: "Audit log" }));
}
