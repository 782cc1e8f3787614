/**
 * Analysis rules in the shapes AWS Clean Rooms users know (API_AnalysisRuleAggregation,
 * API_AnalysisRuleList; see reference/clean-room-systems.md §1.1 and §8).
 *
 * A data owner attaches one rule to each configured dataset. An aggregation rule lists the
 * columns that may be aggregated and with which function, the dimension (GROUP BY)
 * columns, the join columns (joined on, never output), whether a join is required, and
 * output constraints (`COUNT_DISTINCT` minimum over the privacy-unit column, 2–100 000).
 * A list rule allows row-level overlap output; this library never runs list queries in
 * aggregate mode, so a template touching a list-ruled dataset is refused.
 *
 * When several parties' rules apply to one query, the most restrictive wins (AWS:
 * "if A sets 100 and B sets 150 … each output row needs at least 150"): thresholds take
 * the maximum, `joinRequired` the OR, allowed join operators the intersection.
 */
import { z } from "zod";
import { CleanRoomError } from "../errors.js";

/** AWS `minimumIdentityCount` / `AggregationConstraint.minimum` range. */
export const AWS_MIN_THRESHOLD = 2;
export const AWS_MAX_THRESHOLD = 100_000;

const Col = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/);
export const AggregateFunctionName = z.enum(["SUM", "AVG", "COUNT", "COUNT_DISTINCT"]);
export type AggregateFunctionName = z.infer<typeof AggregateFunctionName>;

/** zod schema of AWS-shaped `AnalysisRuleAggregation`. */
export const AnalysisRuleAggregation = z.strictObject({
  type: z.literal("AGGREGATION"),
  aggregateColumns: z.array(z.strictObject({ columnNames: z.array(Col).min(1), function: AggregateFunctionName })),
  dimensionColumns: z.array(Col),
  joinColumns: z.array(Col),
  joinRequired: z.enum(["QUERY_RUNNER", "NONE"]).or(z.boolean()).default(false),
  allowedJoinOperators: z
    .array(z.enum(["AND", "OR"]))
    .min(1)
    .default(["AND"]),
  outputConstraints: z
    .array(
      z.strictObject({
        columnName: Col,
        minimum: z.number().int().min(AWS_MIN_THRESHOLD).max(AWS_MAX_THRESHOLD),
        type: z.literal("COUNT_DISTINCT"),
      }),
    )
    .min(1),
  /** Accepted for AWS compatibility; plans have no scalar functions, so nothing to allow. */
  scalarFunctions: z.array(z.string()).optional(),
  additionalAnalyses: z.enum(["ALLOWED", "REQUIRED", "NOT_ALLOWED"]).optional(),
});
export type AnalysisRuleAggregation = z.infer<typeof AnalysisRuleAggregation>;

/** zod schema of AWS-shaped `AnalysisRuleList`. */
export const AnalysisRuleList = z.strictObject({
  type: z.literal("LIST"),
  joinColumns: z.array(Col).min(1),
  listColumns: z.array(Col).min(1),
  allowedJoinOperators: z
    .array(z.enum(["AND", "OR"]))
    .min(1)
    .default(["AND"]),
});
export type AnalysisRuleList = z.infer<typeof AnalysisRuleList>;

export const AnalysisRule = z.discriminatedUnion("type", [AnalysisRuleAggregation, AnalysisRuleList]);
export type AnalysisRule = z.infer<typeof AnalysisRule>;

/**
 * Parse an analysis rule at the boundary; `RULE_INVALID` naming the field otherwise.
 *
 * @example
 * parseAnalysisRule({ type: "AGGREGATION", aggregateColumns: [{ columnNames: ["value_cents"], function: "SUM" }],
 *   dimensionColumns: ["store_region"], joinColumns: ["join_key"], joinRequired: true,
 *   outputConstraints: [{ columnName: "join_key", minimum: 100, type: "COUNT_DISTINCT" }] })
 */
export function parseAnalysisRule(input: unknown): AnalysisRule {
  const r = AnalysisRule.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = ["rule", ...issue.path.map(String)].join(".");
    throw new CleanRoomError("RULE_INVALID", `"${field}" ${issue.message}`, { field });
  }
  return r.data;
}

/** True when the rule requires the dataset to be joined with another party's data. */
export function joinIsRequired(rule: AnalysisRuleAggregation): boolean {
  return rule.joinRequired === true || rule.joinRequired === "QUERY_RUNNER";
}

/** Is `fn` allowed on `column` by `rule`? */
export function allowsAggregate(rule: AnalysisRuleAggregation, column: string, fn: AggregateFunctionName): boolean {
  return rule.aggregateColumns.some((a) => a.function === fn && a.columnNames.includes(column));
}

/** The rule's strictest COUNT_DISTINCT minimum. */
export function ruleMinimum(rule: AnalysisRuleAggregation): number {
  return Math.max(...rule.outputConstraints.map((c) => c.minimum));
}

/** The combined constraints of several parties' aggregation rules (most restrictive wins). */
export interface CombinedRuleConstraints {
  /** Minimum distinct privacy units per output row: the maximum of all minimums. */
  minimum: number;
  /** True if any party requires a join. */
  joinRequired: boolean;
  /** Intersection of the allowed join operators. */
  allowedJoinOperators: ("AND" | "OR")[];
  /** Which rule set the minimum (dataset key), for the "why suppressed" report. */
  minimumFrom: string;
}

/**
 * Combine rules keyed by dataset (`"owner/name"`): the most restrictive control wins.
 * `RULE_INVALID` if the join operators have no common element.
 *
 * @example
 * combineRules({ "adv/exposures": ruleA, "ret/purchases": ruleB }).minimum // max(100, 150) = 150
 */
export function combineRules(rules: Record<string, AnalysisRuleAggregation>): CombinedRuleConstraints {
  const entries = Object.entries(rules);
  if (entries.length === 0)
    throw new CleanRoomError("RULE_INVALID", `"rules" expected at least one aggregation rule, got none`, { field: "rules" });
  let minimum = 0;
  let minimumFrom = "";
  let joinRequired = false;
  let ops = new Set<"AND" | "OR">(["AND", "OR"]);
  for (const [key, rule] of entries.sort(([a], [b]) => (a < b ? -1 : 1))) {
    const m = ruleMinimum(rule);
    if (m > minimum) {
      minimum = m;
      minimumFrom = key;
    }
    joinRequired ||= joinIsRequired(rule);
    ops = new Set(rule.allowedJoinOperators.filter((o) => ops.has(o)));
  }
  if (ops.size === 0)
    throw new CleanRoomError("RULE_INVALID", `"allowedJoinOperators" expected a common operator across parties, got none`, {
      field: "allowedJoinOperators",
    });
  return { minimum, joinRequired, allowedJoinOperators: [...ops].sort(), minimumFrom };
}
