/**
 * The clean-room query road, split where the ledger charge goes ("One call, one direction",
 * DESIGN.md): `prepareQuery` does every check and computes the plan and privacy cost
 * without side effects; the session charges the ledger atomically; `executeQuery` runs the
 * engine and the release pipeline. A refusal in `prepareQuery` leaves nothing changed.
 *
 * Threat model: the analyst controls the template JSON and parameters; the data owners
 * control datasets, rules and approvals. Only a hash approved by every owner runs.
 */
import type { Rng } from "../rng.js";
import { CleanRoomError } from "../errors.js";
import { columnArray } from "./dataset.js";
import { fileRefOf } from "./file-ref.js";
import type { PrivacyCost } from "../dp/accountant.js";
import type { TemplateRegistry } from "./approvals.js";
import type { DatasetCatalog, Table } from "./dataset.js";
import type { DifferenceHistory } from "./diffcheck.js";
import type { QueryEngine } from "./engine.js";
import { compilePlan, type CheckedTemplate, type Plan, type PlanContext } from "./plan.js";
import { releaseResult, type QueryResult } from "./release.js";
import type { AnalysisRule } from "./rules.js";
import { templateCost, validateParams, type ParamValues, type ParsedTemplate } from "./template.js";

/**
 * A `PlanContext` over a catalog and a rule map keyed `"owner/dataset"`.
 * @example const ctx = roomContext(catalog, new Map([["retailer/purchases", rule]]));
 */
export function roomContext(catalog: DatasetCatalog, rules: ReadonlyMap<string, AnalysisRule>): PlanContext {
  return { dataset: (o, n) => catalog.get(o, n), rule: (o, n) => rules.get(`${o}/${n}`) };
}

const uniqueChecked = new WeakMap<Table, Map<string, boolean>>();

/**
 * The base of a join must have one row per privacy unit in the WHOLE table, checked here,
 * before any charge. The engines also refuse duplicates among the rows that pass the filters,
 * but that refusal depends on the analyst's parameters: "is there a person with two rows on
 * day d?" answered by error or not, once per query, exactly and (for a threshold-only
 * template) without any budget. A whole-table check is one fixed fact about the dataset.
 */
function requireUniqueUnits(table: Table, unit: string): void {
  let byUnit = uniqueChecked.get(table);
  if (!byUnit) uniqueChecked.set(table, (byUnit = new Map()));
  let ok = byUnit.get(unit);
  const file = fileRefOf(table);
  if (ok === undefined && file && file.unit === unit) ok = file.uniqueUnit; // counted by DuckDB at upload
  if (ok === undefined) {
    const col = columnArray(table, unit);
    ok = new Set(Array.from(col)).size === col.length;
    byUnit.set(unit, ok);
  }
  if (!ok)
    throw new CleanRoomError("DATASET_INVALID", "the base table of a join must have one row per privacy unit", { field: "template.base" });
}

/** Everything needed to charge and then run a query. Plain data apart from table refs. */
export interface PreparedQuery {
  /** The approved template, parsed once (its `hash` is `templateHash`). */
  template: ParsedTemplate;
  templateHash: string;
  checked: CheckedTemplate;
  params: ParamValues;
  plan: Plan;
  /** Cost to charge before executing; `null` for a threshold-only template. */
  cost: PrivacyCost | null;
  /** Dataset fingerprints of the inputs (ledger "dataset" budget subjects). */
  fingerprints: Record<string, string>;
  tables: Record<string, Table>;
}

/**
 * Check approval, parameters, schemas and rules; compile the plan; compute the cost.
 * `template` is template JSON or a `ParsedTemplate` (then it is not parsed again).
 * Refusals: `QUERY_NOT_APPROVED`, `PARAM_INVALID`, `TEMPLATE_INVALID`, `NOT_FOUND`.
 *
 * @example
 * const prep = prepareQuery({ template, params: { startDay: 0 }, registry, ctx });
 * ledger.chargeAtomic(roomId, keys, prep.cost!, { templateHash: prep.templateHash });
 */
export function prepareQuery(args: {
  template: ParsedTemplate | unknown;
  params?: unknown;
  registry: TemplateRegistry;
  ctx: PlanContext;
}): PreparedQuery {
  const { template, hash, checked } = args.registry.requireApproved(args.template, args.ctx);
  const params = validateParams(template, args.params);
  const plan = compilePlan(template, params, args.ctx, { withUnits: !!template.differenceCheck });
  const cost = templateCost(template, params);
  const inputs = [template.base, ...(template.events ? [template.events] : [])];
  const tables: Record<string, Table> = {};
  const fingerprints: Record<string, string> = {};
  for (const i of inputs) {
    const ds = args.ctx.dataset(i.owner, i.dataset);
    tables[`${i.owner}/${i.dataset}`] = ds.table;
    fingerprints[`${i.owner}/${i.dataset}`] = ds.fingerprint;
  }
  if (template.events) requireUniqueUnits(tables[`${template.base.owner}/${template.base.dataset}`]!, plan.base.unit);
  return { template, templateHash: hash, checked, params, plan, cost, fingerprints, tables };
}

/**
 * Run a prepared query on an engine and release it (noise from `rng`).
 *
 * @example
 * const result = await executeQuery(prep, { engine: new ArqueroEngine(), rng, history });
 */
export async function executeQuery(
  prep: PreparedQuery,
  opts: { engine: QueryEngine; rng: Rng; history?: DifferenceHistory; resultId?: string; beforeRelease?: () => Promise<void> },
): Promise<QueryResult> {
  const exact = await opts.engine.execute(prep.plan, prep.tables);
  await opts.beforeRelease?.();
  return releaseResult({
    template: prep.template,
    templateHash: prep.templateHash,
    checked: prep.checked,
    exact,
    engine: opts.engine.name,
    cost: prep.cost,
    rng: opts.rng,
    ...(opts.history ? { history: opts.history } : {}),
    ...(opts.resultId ? { resultId: opts.resultId } : {}),
  });
}
