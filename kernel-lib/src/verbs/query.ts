/**
 * Query verbs at the door: `cleanRoomQuery`, `liftStudy` and `attempt`. One door for both
 * executors — the room's in-process engine (default) or an attested enclave
 * (`executor: "enclave"`). The whole request is validated (door.ts) before the lab is asked,
 * so a malformed request (a threshold "ten", an unknown key, a 100 KB analyst name) is
 * refused before the purpose check, the budget charge or the audit.
 *
 * Threat model: as door.ts. Privacy comes from the road below (templates, thresholds, DP
 * noise, the budget); the door only guarantees that a refusal for bad input costs nothing.
 */
import { z } from "zod";
import { isCleanRoomError } from "../errors.js";
import type { RngStamp } from "../rng.js";
import type { CleanRoomResult, Lab, Party, QueryRequest } from "../session.js";
import type { PurposeGrant } from "../purpose/policy.js";
import { enclaveQuery, type EnclaveQueryResult } from "../enclave-room.js";
import { toLiftAggregates } from "../cleanroom/templates/lift.js";
import { liftFromRelease, type ReleasedLiftResult } from "../studies/release.js";
import { withMimeBundle } from "../display/bundle.js";
import { liftPayloadFromResult, queryPayloadFromResult, type ClampReport } from "../display/from-results.js";
import type { QueryResult } from "../cleanroom/release.js";
import { refusalValue, type RefusalView } from "../display/refusal.js";
import { internals } from "../session/lab.js";
import { templateMinimum, type TemplateInput, type TemplateLike } from "../cleanroom/template.js";
import { thresholdText } from "../cleanroom/review.js";
import {
  paramsArg,
  parseAtDoor,
  partyArg,
  purposeName,
  requireRoom,
  shortName,
  splitProgress,
  templateArg,
  type ProgressOption,
} from "./door.js";
import { QUERY_PHASES, QUERY_PHASE_TEXT, type QueryPhase } from "../session/road.js";
import { startProgress } from "../display/progress.js";
import { rngStamp } from "../rng.js";
import { RemoteRoom } from "../server/client.js";

const queryShape = {
  /** The approved template (plan data) or its hash. */
  template: templateArg,
  params: paramsArg.optional(),
  /** The asking party (AWS Clean Rooms: the member who can query). */
  party: partyArg,
  /** The analyst of that party who asks. */
  analyst: shortName,
  /** The declared purpose; a matching grant must exist (see `declarePurpose`). */
  purpose: purposeName,
  /** A grant to present (default: the room finds the analyst's grant for the purpose). */
  grant: z.record(z.string().max(64), z.unknown()).optional(),
  /** "engine" (default): the room's query engine. "enclave": inside an attested enclave. */
  executor: z.enum(["engine", "enclave"]).optional(),
};
const QueryInput = z.strictObject({
  ...queryShape,
  /** Opt-in post-processing: "nonNegative" clamps noisy aggregates below zero to 0, labelled on every cell. */
  clamp: z.enum(["nonNegative"]).optional(),
});
/** What {@link cleanRoomQuery} takes (checked by the strict schema above). */
export interface QueryInput {
  /** The approved template (plan data, e.g. from `liftTemplate`) or its hash. */
  template: TemplateInput | TemplateLike | string;
  params?: Record<string, unknown>;
  party: Party | string;
  analyst: string;
  purpose: string;
  grant?: PurposeGrant;
  executor?: "engine" | "enclave";
  /**
   * Default: when the template's input tables hold {@link LARGE_QUERY_ROWS} rows or more (enclave: {@link LARGE_ENCLAVE_QUERY_ROWS}), an
   * in-place progress bar in the cleanroom-ts kernel (phases check → keys → charge → execute →
   * release). `true` always shows it, `false` never; a function receives `(done, total, phase)`.
   */
  progress?: ProgressOption;
  /**
   * Opt-in post-processing of the released values: `"nonNegative"` sets every noisy aggregate
   * below zero to 0 and records each cell it changed (with the released value) in
   * `postProcessing`; the views label those cells. Costs no budget (post-processing of a DP
   * release), but biases sums upwards: use it for presentation, label it in your analysis.
   */
  clamp?: "nonNegative";
}

type Parsed = Omit<z.output<typeof QueryInput>, "clamp">;

/** A query result after an opt-in clamp: the same result, plus what the clamp changed. */
export type ClampedResult<T extends QueryResult> = T & { postProcessing: ClampReport };

/**
 * Clamp a query result's noisy aggregates at zero (post-processing: no privacy cost). Returns
 * a new result with `postProcessing` listing every cell it changed and the value the room
 * released there; the result's display labels each of them. A result without noise is
 * returned with an empty list (its values are exact; nothing to clamp).
 *
 * @example
 * const r = await cleanRoomQuery(lab, { ...req, clamp: "nonNegative" });
 * r.postProcessing.cells // [{ row: 3, column: "buyers", released: -2 }]
 */
export function clampNonNegative<T extends QueryResult>(result: T): ClampedResult<T> {
  const cells: ClampReport["cells"] = [];
  const noisy = result.noise ? result.aggregates : [];
  const rows = result.rows.map((row, i) => {
    const out = { ...row };
    for (const c of noisy) {
      const v = row[c];
      const negative = typeof v === "number" ? v < 0 : typeof v === "string" && /^-\d/.test(v);
      if (v === null || v === undefined || !negative) continue;
      cells.push({ row: i, column: c, released: v });
      out[c] = 0;
    }
    return out;
  });
  const note =
    `post-processing: ${cells.length} noisy value${cells.length === 1 ? "" : "s"} below 0 set to 0 (clamp "nonNegative"; ` +
    "no privacy cost; biases sums and means upwards)";
  return { ...result, rows, postProcessing: { clamp: "nonNegative", note, cells } };
}

/** From this many input rows on (the template's tables together), a query shows a progress bar by default. */
export const LARGE_QUERY_ROWS = 200_000;
/** The same for an enclave query (measured about 4× slower per row than the in-process engine). */
export const LARGE_ENCLAVE_QUERY_ROWS = 50_000;

/** Rows in the template's input tables, from the room's catalogs (0 when it cannot tell: the road refuses later). */
function inputRows(lab: Lab, template: unknown, executor: "engine" | "enclave" | undefined): number {
  try {
    const { room, enclave } = internals(lab);
    const t = room.resolveTemplate(template);
    const ctx = executor === "enclave" ? enclave().operator.planContext() : room.planContext();
    return [t.base, ...(t.events ? [t.events] : [])].reduce((n, i) => n + ctx.dataset(i.owner, i.dataset).rows, 0);
  } catch {
    return 0;
  }
}

async function run(lab: Lab | RemoteRoom, q: Parsed, progress: ProgressOption | undefined): Promise<CleanRoomResult | EnclaveQueryResult> {
  if (lab instanceof RemoteRoom) {
    const party = typeof q.party === "string" ? q.party : (q.party as Party).name;
    return lab.request<QueryOutcome>("cleanRoomQuery", { input: { ...q, party } });
  }
  const req = {
    template: q.template,
    as: { party: q.party, analyst: q.analyst },
    purpose: q.purpose,
    ...(q.params ? { params: q.params } : {}),
    ...(q.grant ? { grant: q.grant } : {}),
  } as QueryRequest;
  const large = q.executor === "enclave" ? LARGE_ENCLAVE_QUERY_ROWS : LARGE_QUERY_ROWS;
  const show = progress === true || (progress === undefined && inputRows(lab, q.template, q.executor) >= large);
  const bar = show ? startProgress(`query (${q.executor ?? "engine"})`, { total: QUERY_PHASES.length, ...rngStamp(lab.rng) }) : null;
  let prev: QueryPhase | null = null;
  const onPhase =
    typeof progress === "function"
      ? (p: QueryPhase) => progress(QUERY_PHASES.indexOf(p), QUERY_PHASES.length, QUERY_PHASE_TEXT[p])
      : bar
        ? (p: QueryPhase) => {
            if (prev) bar.report(1, 1, QUERY_PHASE_TEXT[prev]);
            bar.report(0, 1, QUERY_PHASE_TEXT[p]);
            prev = p;
          }
        : undefined;
  try {
    const r = await (q.executor === "enclave" ? enclaveQuery(lab, req, onPhase) : lab.cleanRoomQuery(req, onPhase));
    bar?.finish("done");
    return r;
  } catch (e) {
    bar?.finish("failed");
    throw e;
  }
}

/**
 * Run an approved template under a declared purpose (AWS Clean Rooms: StartProtectedQuery
 * with an analysis template); the result is noised, thresholded, charged to the budget and
 * audited. A refusal throws a CleanRoomError whose `details.trace` says where — wrap in
 * {@link attempt} to display it instead.
 *
 * @example
 * const r = await cleanRoomQuery(lab, { template: t, params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo", purpose: "measurement" })
 * const e = await cleanRoomQuery(lab, { template: t, params, party: "advertiser", analyst: "bo", purpose: "measurement", executor: "enclave" })
 */
export async function cleanRoomQuery(lab: Lab, input: QueryInput & { executor: "enclave" }): Promise<EnclaveQueryResult>;
export async function cleanRoomQuery(lab: Lab | RemoteRoom, input: QueryInput): Promise<QueryOutcome>;
export async function cleanRoomQuery(lab: Lab | RemoteRoom, input: QueryInput): Promise<QueryOutcome | EnclaveQueryResult> {
  const l = requireRoom(lab, "cleanRoomQuery");
  const { rest, progress } = splitProgress(input);
  const { clamp, ...q } = parseAtDoor(QueryInput, rest, "input");
  const r = await run(l, q, progress);
  if (l instanceof RemoteRoom) {
    // the server ran the one road and computed the threshold in force; the view is made here
    const o = r as QueryOutcome;
    return withMimeBundle({ ...(clamp ? clampNonNegative(o) : o) }, (x) => queryPayloadFromResult(x, { purpose: x.purpose }));
  }
  if (q.executor === "enclave") {
    if (!clamp) return r as EnclaveQueryResult; // already renders as an enclave query
    const title = `Enclave query (${(r as EnclaveQueryResult).attestation.moduleId})`;
    return withMimeBundle(clampNonNegative(r as EnclaveQueryResult), (x) => queryPayloadFromResult(x, { purpose: x.purpose, title }));
  }
  const own = templateMinimum(internals(l).room.resolveTemplate(q.template));
  const { minimum, minimumFrom } = r.suppressed;
  const threshold: ThresholdInForce = {
    effective: minimum,
    from: minimumFrom,
    template: own,
    raised: own < minimum,
    text: thresholdText(minimum, minimumFrom, own),
  };
  return withMimeBundle({ ...(clamp ? clampNonNegative(r) : r), threshold }, (x) =>
    queryPayloadFromResult(x, {
      purpose: x.purpose,
      ...(x.threshold.raised
        ? {
            title: `${x.templateName} — threshold ≥ ${minimum} from the analysis rule of ${minimumFrom} (the template's own ${own} is looser)`,
          }
        : {}),
    }),
  );
}

/** The threshold a query ran with, beside the template's own (see docs/templates.md, "Thresholds"). */
export interface ThresholdInForce {
  /** Minimum distinct people per released row that applied. */
  effective: number;
  /** "template", or the `owner/dataset` whose analysis rule set it. */
  from: string;
  /** The template's own minimum (preset resolved). */
  template: number;
  /** True when an owner's rule was stricter than the template: the template's threshold did not apply. */
  raised: boolean;
  text: string;
}

/** What {@link cleanRoomQuery} returns (engine executor): the result and the threshold in force. */
export type QueryOutcome = CleanRoomResult & { threshold: ThresholdInForce };

/** What `attempt` returns for a refused call. */
export type Refusal = RefusalView;

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

const LiftInput = z.strictObject({
  ...queryShape,
  /** Minimum cohort size for a lift estimate (default: the template's threshold). */
  threshold: z.number().int().min(0).max(1_000_000_000).optional(),
  /** The generator's stated truth, shown beside the estimate (teaching). */
  groundTruth: z.strictObject({ lift: z.number(), incrementalConversions: z.number().optional() }).optional(),
});
/** What {@link liftStudy} takes. */
export interface LiftInput extends QueryInput {
  threshold?: number;
  groundTruth?: { lift: number; incrementalConversions?: number };
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
 * intervals that include the DP noise variance (fbpcs Private Lift metric names). Every
 * option is validated before the query is charged.
 *
 * @example
 * const s = await liftStudy(lab, { template: t, params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo",
 *   purpose: "measurement", groundTruth: { lift: study.groundTruth.truth.converters.relativeLift } })
 */
export async function liftStudy(lab: Lab | RemoteRoom, input: LiftInput): Promise<LiftStudy> {
  const l = requireRoom(lab, "liftStudy");
  const { rest, progress } = splitProgress(input);
  const { threshold, groundTruth, ...q } = parseAtDoor(LiftInput, rest, "input");
  const query = await run(l, q, progress);
  const released = toLiftAggregates(query);
  const lift = liftFromRelease(released, { threshold: threshold ?? query.suppressed.minimum });
  const out: LiftStudy = { query, lift, ...(groundTruth ? { groundTruth } : {}), rngStamp: query.rngStamp };
  return withMimeBundle(out, (s) => {
    const first = s.lift.cohorts.find((c) => c.result) ?? s.lift.cohorts[0];
    const noise = released.find((c) => c.cohort === first?.cohort)?.noiseVariance.converters ?? 0;
    if (!first?.result)
      return {
        kind: "error",
        version: 1,
        code: "THRESHOLD_NOT_MET",
        field: "lift",
        message: "every cohort was suppressed: no lift can be released",
      };
    return liftPayloadFromResult(first.result, {
      title: first.cohort ? `Lift — ${first.cohort}` : "Lift (exposed vs holdout)",
      converterNoiseVariance: noise,
      rngStamp: s.rngStamp,
      ...(s.groundTruth ? { groundTruth: s.groundTruth } : {}),
    });
  });
}
