/**
 * The one query road (DESIGN.md): parse → purpose → template/rule → plan → cost → key
 * acquisition → atomic charge → execute → bound → noise → threshold → audit → result.
 *
 * Every query, plain or enclave, walks THIS function. What differs between modes is a
 * {@link QueryExecutor}: the in-process engine (session/engine-executor.ts) or the attested
 * enclave (session/enclave-mode.ts). The executor admits the template's inputs, says what
 * the planner sees, acquires keys (BEFORE the charge: a refused key release costs no budget)
 * and executes (bound → noise → threshold happen inside `executeQuery` / the enclave's
 * workload, with the same release pipeline).
 *
 * Threat model: a refusal at any step leaves no side effect except its own audit entry; the
 * charge is atomic across every budget it touches; a refusal after execution keeps the
 * charge (a threshold or difference-check refusal can itself leak). Ledger and audit calls
 * of a query are here and in `Room.charge` only.
 */
import { invalid, isCleanRoomError } from "../errors.js";
import { auditCost } from "../purpose/audit.js";
import type { PurposeRoom } from "../purpose/room.js";
import type { PrivacyCost } from "../dp/accountant.js";
import { prepareQuery, type PreparedQuery } from "../cleanroom/query.js";
import type { QueryResult } from "../cleanroom/release.js";
import type { PlanContext } from "../cleanroom/plan.js";
import { templateHash, type Template } from "../cleanroom/template.js";
import { traceOf } from "../trace.js";
import { tick } from "../steps.js";
import type { Room } from "./room.js";
import { NAME, type CleanRoomResult, type QueryRequest, type Requester } from "./types.js";

/** What the purpose gate released for one query. */
export type Authorized = ReturnType<PurposeRoom["authorizeQuery"]>;

/** One query as the road hands it to an executor (after plan and cost). */
export interface RoadQuery {
  template: Template;
  templateHash: string;
  prep: PreparedQuery;
  purpose: string;
  requester: Requester;
  /** Input dataset keys (`owner/name`). */
  datasets: string[];
  charged: CleanRoomResult["charged"];
}

/** How a mode runs a query: the road calls it, never the other way round. */
export interface QueryExecutor<Keys, Extra extends object> {
  readonly name: string;
  /** Parse step: mode-specific admission of the template's inputs (throws a CleanRoomError). */
  admit(template: Template): void;
  /** What the purpose step reports on success. */
  purposeNote(purpose: string): string;
  /** The planner's view: released tables (engine) or catalog metadata (enclave). */
  planContext(authorized: Authorized): PlanContext;
  /** Plan step: mode-specific refusals after planning (e.g. no difference check in an enclave). */
  checkPlan(prep: PreparedQuery, template: Template): void;
  readonly planNote?: string;
  /** Key acquisition, BEFORE the charge: throw a CleanRoomError to refuse (nothing charged). */
  acquire(q: Omit<RoadQuery, "charged">): Keys | Promise<Keys>;
  /** What the budget step reports after a successful charge. */
  chargeNote(keys: Keys): string;
  /** Called once when a query that acquired `keys` ends, however it ends (the enclave unpins what it ran on). */
  settle?(keys: Keys): void;
  /**
   * Execute → bound → noise → threshold; `where` names where it ran. `phase` (when given) is
   * awaited as each later phase starts (the engine executor: "release" once the engine is done).
   */
  execute(
    q: RoadQuery,
    keys: Keys,
    phase?: (name: QueryPhase) => Promise<void>,
  ): Promise<{ result: QueryResult; where: string; extra: Extra }>;
}

/** The phases of a query as a progress bar shows them, in order. */
export const QUERY_PHASES = ["check", "keys", "charge", "execute", "release"] as const;
export type QueryPhase = (typeof QUERY_PHASES)[number];
/** What each phase does, for people. */
export const QUERY_PHASE_TEXT: Readonly<Record<QueryPhase, string>> = {
  check: "check: purpose, rules, plan, cost",
  keys: "keys: the tables or the enclave's keys",
  charge: "charge the budget",
  execute: "execute",
  release: "release: bound, noise, threshold",
};

const inputsOf = (t: Template): string[] => [t.base, ...(t.events ? [t.events] : [])].map((i) => `${i.owner}/${i.dataset}`);

/**
 * Run one query down the road with `executor`. Throws a CleanRoomError whose
 * `details.trace` says which step refused.
 */
export async function runQuery<K, X extends object>(
  room: Room,
  req: QueryRequest,
  executor: QueryExecutor<K, X>,
  onPhase?: (name: QueryPhase) => void,
): Promise<CleanRoomResult & X> {
  // report a phase and let the event loop run (a kernel publishes the bar's update meanwhile)
  const phase = onPhase
    ? async (name: QueryPhase) => {
        try {
          onPhase(name);
        } catch {
          // a failing report never fails the query it reports on
        }
        await tick();
      }
    : async () => undefined;
  await phase("check");
  const trace = traceOf();
  let template: Template;
  let requester: Requester;
  try {
    if (!req || typeof req !== "object") invalid("request", "{ template, params, as, purpose }", req);
    requester = { party: room.requireParty(req.as?.party, "as.party"), analyst: req.as?.analyst };
    if (typeof requester.analyst !== "string" || !NAME.test(requester.analyst))
      invalid("as.analyst", "analyst short name [a-z][a-z0-9_-]{0,31}", requester.analyst);
    if (typeof req.purpose !== "string" || req.purpose.length === 0)
      invalid("purpose", 'a declared purpose, e.g. "measurement"', req.purpose, "PURPOSE_UNKNOWN");
    template = room.resolveTemplate(req.template);
    executor.admit(template);
    trace.ok("parse");
  } catch (e) {
    throw trace.refuse("parse", e);
  }
  const hash = templateHash(template);
  const datasets = inputsOf(template);
  let authorized: Authorized;
  try {
    authorized = room.purpose.authorizeQuery({
      grant: req.grant,
      requester,
      purpose: req.purpose,
      templateHash: hash,
      inputs: datasets.map((datasetId) => ({ datasetId })),
    });
    trace.ok("purpose", executor.purposeNote(authorized.purpose));
  } catch (e) {
    throw trace.refuse("purpose", e); // audited by the purpose layer
  }
  const purpose = authorized.purpose;
  const record = (outcome: "granted" | "refused", cost: PrivacyCost | null, e: unknown = null) =>
    room.purpose.recordQuery({
      requester,
      purpose,
      grantId: authorized.grantId,
      templateHash: hash,
      datasets,
      privacyCost: cost ? auditCost(cost) : null,
      outcome,
      errorCode: (e === null ? null : isCleanRoomError(e) ? e.code : "INTERNAL") as never,
    });
  let prep: PreparedQuery;
  try {
    prep = prepareQuery({ template, params: req.params ?? {}, registry: room.templates, ctx: executor.planContext(authorized) });
    executor.checkPlan(prep, template);
    trace
      .ok("rule", "approved by every data owner")
      .ok("plan", executor.planNote)
      .ok("cost", prep.cost ? "computed before running" : "threshold only, no DP cost");
  } catch (e) {
    record("refused", null, e);
    throw trace.refuse(isCleanRoomError(e) && e.code === "PARAM_INVALID" ? "plan" : "rule", e);
  }
  const q = { template, templateHash: hash, prep, purpose, requester, datasets };
  await phase("keys");
  let keys: K;
  try {
    keys = await executor.acquire(q);
  } catch (e) {
    record("refused", null, e);
    trace.skip("budget", "nothing charged: the owners refused before any budget was spent");
    throw trace.refuse("execute", e);
  }
  try {
    await phase("charge");
    let charged: CleanRoomResult["charged"] = null;
    try {
      charged = room.charge(prep, requester.party, purpose);
      if (charged) trace.ok("budget", `charged ${charged.text}${executor.chargeNote(keys)}`);
      else trace.skip("budget", "no DP noise in this template");
    } catch (e) {
      record("refused", prep.cost, e);
      throw trace.refuse("budget", e);
    }
    try {
      await phase("execute");
      const { result, where, extra } = await executor.execute({ ...q, charged }, keys, phase);
      trace
        .ok("execute", where)
        .ok("threshold", `${result.suppressed.rows.length} row(s) suppressed (minimum ${result.suppressed.minimum})`);
      record("granted", prep.cost);
      trace.ok("audit");
      return { ...result, purpose, charged, trace: trace.steps, ...extra };
    } catch (e) {
      // the charge stands: a refusal after execution (threshold "error" style, difference check) can leak
      record("refused", prep.cost, e);
      throw trace.refuse(
        isCleanRoomError(e) && (e.code === "THRESHOLD_NOT_MET" || e.code === "DIFFERENCE_CHECK_FAILED") ? "threshold" : "execute",
        e,
      );
    }
  } finally {
    executor.settle?.(keys);
  }
}
