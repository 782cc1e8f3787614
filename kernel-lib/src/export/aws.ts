/**
 * AWS Clean Rooms artefacts: the analysis template (Spark SQL carrying the lab design), one CUSTOM
 * rule per configured table pinning it (with the DP column when noised), the owners' rules in
 * AWS's AGGREGATION shape for reference, and the privacy budget template.
 */
import type { AnalysisRuleAggregation } from "../cleanroom/rules.js";
import { templateNoise, type ParsedTemplate, type Template } from "../cleanroom/template.js";
import type { ExportedSql } from "./sql.js";
import { AWS_SCALAR_FUNCTIONS, AwsExport, type AwsAggregationRule, type AwsConfiguredTableAnalysisRule } from "./schemas.js";
import { common, inputs, validate, type ExportInputs } from "./common.js";

/** Marker of the design line in an exported AWS analysis template. */
export const DESIGN_MARK = "-- cleanroom-lab design v1 ";

const awsName = (n: string) =>
  n
    .replace(/[^A-Za-z0-9_ ]/g, "_")
    .replace(/^[^A-Za-z0-9_]/, "_")
    .slice(0, 128) || "template";
/** Placeholder ARN of the analysis template (account, region and membership are the user's). */
export const awsTemplateArn = (t: Template) =>
  `arn:aws:cleanrooms:us-east-1:000000000000:membership/00000000-0000-0000-0000-000000000000/analysistemplate/${
    t.name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-|-$/g, "")
      .slice(0, 60) || "template"
  }`;

/** A lab rule in AWS's API shape (type dropped, `joinRequired: true` → "QUERY_RUNNER"). */
export function toAwsAggregationRule(r: AnalysisRuleAggregation): AwsAggregationRule {
  return {
    aggregateColumns: r.aggregateColumns.map((a) => ({ columnNames: [...a.columnNames], function: a.function })),
    joinColumns: [...r.joinColumns],
    ...(r.joinRequired === true || r.joinRequired === "QUERY_RUNNER" ? { joinRequired: "QUERY_RUNNER" as const } : {}),
    allowedJoinOperators: [...r.allowedJoinOperators],
    dimensionColumns: [...r.dimensionColumns],
    scalarFunctions: (r.scalarFunctions ?? []).filter((f): f is (typeof AWS_SCALAR_FUNCTIONS)[number] =>
      (AWS_SCALAR_FUNCTIONS as readonly string[]).includes(f),
    ),
    outputConstraints: r.outputConstraints.map((c) => ({ ...c })),
    ...(r.additionalAnalyses ? { additionalAnalyses: r.additionalAnalyses } : {}),
  };
}

export function awsExport(t: ParsedTemplate, x: ExportInputs, e: ExportedSql): { artefacts: AwsExport; differences: string[] } {
  const noise = templateNoise(t);
  const design = JSON.stringify({ template: JSON.parse(t.canonical), unit: x.unit, minimum: x.minimum, minimumFrom: x.minimumFrom });
  const text = `${DESIGN_MARK}sha256:${t.hash}\n-- ${design}\n${e.sql}`;
  const rules: AwsConfiguredTableAnalysisRule[] = inputs(t).map((i) => ({
    configuredTableIdentifier: i.dataset,
    analysisRuleType: "CUSTOM",
    analysisRulePolicy: {
      v1: {
        custom: {
          allowedAnalyses: [x.aws?.templateArn ?? awsTemplateArn(t)],
          ...(noise ? { differentialPrivacy: { columns: [{ name: i.side === "base" ? x.unit : t.events!.joinOn }] } } : {}),
        },
      },
    },
  }));
  const notExported: string[] = [];
  for (const i of inputs(t)) {
    const r = x.rules[`${i.owner}/${i.dataset}`];
    // AWS requires at least one aggregate column in an AGGREGATION rule; a count-only lab rule has none
    if (r && r.aggregateColumns.length === 0) notExported.push(`${i.owner}/${i.dataset}`);
    else if (r)
      rules.push({
        configuredTableIdentifier: i.dataset,
        analysisRuleType: "AGGREGATION",
        analysisRulePolicy: { v1: { aggregation: toAwsAggregationRule(r) } },
      });
  }
  const eps = x.budget?.epsilon;
  const artefacts = {
    analysisTemplate: {
      name: x.aws?.name ?? awsName(t.name),
      ...(x.aws?.description === null ? {} : { description: x.aws?.description ?? `cleanroom-lab template ${t.hash.slice(0, 16)}` }),
      format: "SQL",
      source: { text },
      ...(e.params.length
        ? {
            analysisParameters: e.params.flatMap((p) =>
              p.list
                ? Array.from({ length: p.slots! }, (_, k) => ({ name: `${p.name}_${k + 1}`, type: "VARCHAR" as const }))
                : [{ name: p.name, type: p.type === "int" ? ("INTEGER" as const) : ("VARCHAR" as const) }],
            ),
          }
        : {}),
    },
    configuredTableAnalysisRules: rules,
    ...(noise
      ? {
          privacyBudgetTemplate: {
            autoRefresh: x.budget?.refresh === "monthly" ? "CALENDAR_MONTH" : "NONE",
            privacyBudgetType: "DIFFERENTIAL_PRIVACY",
            parameters: {
              differentialPrivacy: {
                epsilon: Math.min(20, Math.max(1, Math.ceil(eps ?? 1))),
                usersNoisePerQuery: x.aws?.usersNoisePerQuery ?? 10,
              },
            },
          },
        }
      : {}),
  };
  const differences = [
    "rule: each table gets a CUSTOM rule allowing only this analysis template (the lab's approval, pinned " +
      "by ARN — replace the placeholder account/membership); AWS allows one rule per configured table, so the " +
      "owners' AGGREGATION rules (included for reference) are NOT enforced on it: their column lists and COUNT " +
      "DISTINCT minimum live in the SQL",
    `threshold: at least ${x.minimum} distinct ${x.unit} per row (set by ${x.minimumFrom}) is the SQL's final ` +
      `WHERE; AWS does not add one for a custom analysis`,
    ...(noise
      ? [
          "noise: AWS adds its own differential-privacy noise, calibrated by usersNoisePerQuery (set to the minimum, " +
            "10 — choose yours), not the lab's per-aggregate ε; the lab's ± and its exact discrete samplers do not " +
            "carry over",
          `budget: AWS's ε is one integer (1–20) per collaboration, refreshed monthly or never; the lab's ` +
            (eps !== undefined
              ? `ε = ${eps} (rounded up to ${Math.min(20, Math.max(1, Math.ceil(eps)))})`
              : "room budget (none set: ε = 1 stated)") +
            " " +
            `and its per-party and per-dataset budgets do not carry over`,
          "query shape: AWS differential privacy restricts the SQL of analyses it noises (functions, subqueries); " +
            "the lab's per-person stage (row cap, clamp) may need rewriting — not verified against AWS",
        ]
      : ["noise: none (threshold only): like the lab, NOT differentially private"]),
    ...notExported.map(
      (k) =>
        `the rule of ${k} allows no aggregate column (counts only); AWS requires at least one, so it is not exported as an AGGREGATION rule`,
    ),
    "parameters: `:name`; a list parameter is a fixed number of VARCHAR slots (`name_1 … name_n`; repeat a value to use fewer)",
    ...common(t, "aws"),
  ];
  return { artefacts: validate(AwsExport, artefacts, "aws"), differences };
}
