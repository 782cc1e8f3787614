/**
 * Template review for previews: what a template would meet in a room — the effective
 * threshold after the owners' analysis rules (and who set it), and each dimension, aggregate
 * and filter column allowed or refused by the rule that decides — without approving,
 * running or charging anything. Same checks as `checkTemplate` (plan.ts), reported instead
 * of thrown.
 *
 * Threat model: reads public plan data and the catalog's schema/rule metadata only (names,
 * never values), as an owner reviewing a template would.
 */
import { CleanRoomError } from "../errors.js";
import { checkTemplate, ruleAllows, type PlanContext } from "./plan.js";
import { allowsAggregate, ruleMinimum, type AnalysisRule } from "./rules.js";
import { templateMinimum, type Template } from "./template.js";

/** The effective threshold in words, the same in previews, approvals and query results. */
export function thresholdText(effective: number, from: string, template: number): string {
  const who = from === "template" ? "the template's own minimum" : `the analysis rule of ${from}`;
  const looser = from !== "template" && template < effective ? `; the template's own minimum ${template} is looser and does not apply` : "";
  return `≥ ${effective} distinct people per released row (set by ${who}${looser})`;
}

/** One use of a column by a template, as the owner's rule judges it (for previews). */
export interface RuleVerdict {
  use: "dimension" | "aggregate" | "filter";
  /** `dataset.column` as the template writes it. */
  column: string;
  /** The rule function an aggregate needs (`sum`/`sumSquares` → SUM, `avg` → AVG). */
  fn?: "SUM" | "AVG";
  /** Whose rule decides: `owner/dataset`. */
  rule: string;
  allowed: boolean;
  /** Why: what the rule allows on that column (schema names only). */
  reason: string;
}

/** What a template would meet in this room, without running or approving it. */
export interface TemplateReview {
  /** The effective threshold: max of the template's own minimum and every owner's COUNT_DISTINCT minimum. */
  threshold: { effective: number; from: string; template: number; rules: { rule: string; minimum: number }[] };
  verdicts: RuleVerdict[];
  /** The refusal `checkTemplate` (approval and every run) would raise, or null. */
  refusal: { code: string; field?: string; message: string } | null;
  owners: string[];
}

/**
 * Review a template against the room's schemas and owners' rules without throwing for a rule
 * refusal: the effective threshold (and who set it), each dimension / aggregate / filter
 * column allowed or refused with the rule that decides, and the refusal approval would raise.
 * A missing dataset still throws (`NOT_FOUND`): there is nothing to review against.
 *
 * @example reviewTemplate(t, ctx).threshold // { effective: 100, from: "retailer/purchases", template: 20, … }
 */
export function reviewTemplate(t: Template, ctx: PlanContext): TemplateReview {
  const sides: { alias: string; key: string; rule: AnalysisRule | undefined }[] = [t.base, ...(t.events ? [t.events] : [])].map((r) => {
    ctx.dataset(r.owner, r.dataset);
    return { alias: r.dataset, key: `${r.owner}/${r.dataset}`, rule: ctx.rule(r.owner, r.dataset) };
  });
  const verdicts: RuleVerdict[] = [];
  const judge = (use: RuleVerdict["use"], ref: string, fn?: "SUM" | "AVG") => {
    const [alias, column] = ref.split(".") as [string, string];
    const side = sides.find((x) => x.alias === alias) ?? sides[0]!;
    const rule = side.rule;
    let allowed = false;
    let reason: string;
    if (!rule || rule.type !== "AGGREGATION") reason = `${side.key} has no aggregation rule`;
    else {
      allowed =
        use === "dimension"
          ? rule.dimensionColumns.includes(column)
          : use === "aggregate"
            ? allowsAggregate(rule, column, fn!)
            : rule.dimensionColumns.includes(column) || rule.aggregateColumns.some((a) => a.columnNames.includes(column));
      reason = `allows ${ruleAllows(rule, column)}`;
    }
    verdicts.push({ use, column: ref, ...(fn ? { fn } : {}), rule: side.key, allowed, reason });
  };
  t.groupBy.forEach((g) => judge("dimension", g));
  t.aggregates.forEach((a) => "column" in a && judge("aggregate", a.column, a.fn === "avg" ? "AVG" : "SUM"));
  t.filters.forEach((f) => {
    judge("filter", f.column);
    if ("column" in f.value) judge("filter", f.value.column);
  });
  const own = templateMinimum(t);
  const rules = sides.flatMap((x) => (x.rule?.type === "AGGREGATION" ? [{ rule: x.key, minimum: ruleMinimum(x.rule) }] : []));
  let effective = own;
  let from = "template";
  for (const r of [...rules].sort((a, b) => (a.rule < b.rule ? -1 : 1)))
    if (r.minimum > effective) {
      effective = r.minimum;
      from = r.rule;
    }
  let refusal: TemplateReview["refusal"] = null;
  try {
    const checked = checkTemplate(t, ctx);
    effective = checked.minimum;
    from = checked.minimumFrom;
  } catch (e) {
    if (!(e instanceof CleanRoomError)) throw e;
    const field = (e.details as { field?: unknown } | undefined)?.field;
    refusal = { code: e.code, ...(typeof field === "string" ? { field } : {}), message: e.message };
  }
  return {
    threshold: { effective, from, template: own, rules },
    verdicts,
    refusal,
    owners: [...new Set([t.base.owner, ...(t.events ? [t.events.owner] : [])])].sort(),
  };
}
