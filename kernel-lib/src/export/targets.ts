/**
 * An approved template as each target's artefacts — the JSON its API accepts and the SQL it
 * runs — validated against the target's schema (schemas.ts), with the list of what the target
 * enforces differently from the lab, so nobody is surprised in production.
 *
 * What is exported:
 *  - AWS Clean Rooms: a `CreateAnalysisTemplate` body (Spark SQL, `:name` parameters; the lab's
 *    design is carried in a leading comment so `importAws` can verify and read it back), one
 *    `CreateConfiguredTableAnalysisRule` per input (a CUSTOM rule allowing exactly this analysis
 *    template, with the differential-privacy column when the template adds noise), the owners'
 *    lab rules in AWS's AGGREGATION shape (reference: what they said in the lab), and a
 *    `CreatePrivacyBudgetTemplate` body for noised templates.
 *  - BigQuery data clean rooms: one view per input with its analysis rule (`privacy_policy`:
 *    aggregation threshold, or differential privacy, plus a join restriction), the query with
 *    `WITH AGGREGATION_THRESHOLD` / `WITH DIFFERENTIAL_PRIVACY OPTIONS(…)` and its typed parameters.
 *  - Snowflake data clean rooms: the JinjaSQL template, its join and column policies, the
 *    threshold (in the SQL), the provider API calls, and a privacy policy for noised templates.
 */
import { CleanRoomError } from "../errors.js";
import type { AnalysisRuleAggregation } from "../cleanroom/rules.js";
import { templateNoise, type ParsedTemplate, type Template } from "../cleanroom/template.js";
import { allParamsGuarded, bigQueryEpsilon, DEFAULT_DELTA, exportSql, type ExportedSql, type Target } from "./sql.js";
import { SHIMS } from "./shims.js";
import {
  AWS_SCALAR_FUNCTIONS,
  AwsExport,
  BigQueryExport,
  SnowflakeExport,
  type AwsAggregationRule,
  type AwsConfiguredTableAnalysisRule,
  type BigQueryPrivacyPolicy,
} from "./schemas.js";
import type { z } from "zod";

/** The room facts an export needs (read by the verb from the lab; plain data). */
export interface ExportInputs {
  /** The base dataset's privacy-unit column. */
  unit: string;
  /** The effective minimum (template vs every owner's COUNT_DISTINCT minimum). */
  minimum: number;
  /** Who set it ("template" or "owner/dataset"). */
  minimumFrom: string;
  /** Each input's owner rule (AWS-shaped), keyed "owner/dataset". */
  rules: Record<string, AnalysisRuleAggregation>;
  /** The room's privacy budget, when it has one. */
  budget?: { epsilon?: number; delta?: number; rho?: number; refresh?: "none" | "daily" | "monthly" };
  /** AWS names the lab cannot know (kept by `importAws` so a round trip is stable). */
  aws?: { name?: string; templateArn?: string; usersNoisePerQuery?: number };
}

/** One file of an export, for the side-by-side view. */
export interface ExportFile {
  name: string;
  language: "json" | "sql";
  text: string;
}

/** What `exportTemplate` returns for one target. */
export interface TargetExport {
  target: Target;
  templateName: string;
  templateHash: string;
  /** The target's artefacts (API request bodies, SQL), validated against its schema. */
  artefacts: AwsExport | BigQueryExport | SnowflakeExport;
  /** The same, as files to read or save. */
  files: ExportFile[];
  /** What the target enforces differently from the lab (read before running in production). */
  differences: string[];
  /** How the SQL is made runnable on DuckDB for the equivalence proof (shims.ts). */
  shims: readonly string[];
  /** The exported SQL and its parameters (what the proof runs). */
  sql: ExportedSql;
}

/** Marker of the design line in an exported AWS analysis template. */
export const DESIGN_MARK = "-- cleanroom-lab design v1 ";

const awsName = (n: string) =>
  n
    .replace(/[^A-Za-z0-9_ ]/g, "_")
    .replace(/^[^A-Za-z0-9_]/, "_")
    .slice(0, 128) || "template";
const sfName = (n: string) =>
  (
    "cleanroom_" +
    n
      .toLowerCase()
      .replace(/[^a-z0-9_]/g, "_")
      .replace(/_+/g, "_")
  ).slice(0, 200);
const sfTable = (owner: string, dataset: string) =>
  `${owner.toUpperCase().replace(/[^A-Z0-9_]/g, "_")}_DB.CLEAN_ROOM.${dataset.toUpperCase()}`;
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

function validate<S extends z.ZodType>(schema: S, value: unknown, target: Target): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new CleanRoomError(
      "INTERNAL",
      `the ${target} export does not match the target's schema at ${i.path.join(".") || "(root)"}: ${i.message} — this is a bug in cleanroom-lab`,
      { field: i.path.join(".") },
    );
  }
  return r.data;
}

const inputs = (t: Template) => [
  { side: "base" as const, ...t.base },
  ...(t.events ? [{ side: "events" as const, owner: t.events.owner, dataset: t.events.dataset }] : []),
];

/** Differences every target shares. */
function common(t: Template, target: Target): string[] {
  const out: string[] = [];
  if (t.threshold.style !== "drop")
    out.push(
      `threshold style "${t.threshold.style}": the target drops rows below the minimum silently ` +
        `(no ${t.threshold.style === "remainder" ? "remainder row" : "THRESHOLD_NOT_MET error"}, ` +
        `no "why suppressed" report)`,
    );
  if (t.differenceCheck) out.push(`difference check (k = ${t.differenceCheck.k}): the target has none; it is not exported`);
  if (!allParamsGuarded(t, target))
    out.push(
      "parameters: the lab refuses values outside the declared lists; the exported SQL guards ints and enums, " +
        "but not list parameters here (the target checks only the type)",
    );
  out.push(
    "approval: the lab runs only a hash every owner approved; the target has its own review (see the rule " +
      "above) — re-approve there, the lab's approval does not travel",
  );
  out.push("audit and purpose: the lab's hash-chained audit, purposes and consent gate stay in the lab; the target logs in its own way");
  return out;
}

function awsExport(t: ParsedTemplate, x: ExportInputs, e: ExportedSql): { artefacts: AwsExport; differences: string[] } {
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
      description: `cleanroom-lab template ${t.hash.slice(0, 16)}`,
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

function bigQueryExport(t: ParsedTemplate, x: ExportInputs, e: ExportedSql): { artefacts: BigQueryExport; differences: string[] } {
  const noise = templateNoise(t);
  const eps = bigQueryEpsilon(t, x);
  const delta = x.budget?.delta ?? DEFAULT_DELTA;
  const views = inputs(t).map((i) => {
    const unit = i.side === "base" ? x.unit : t.events!.joinOn;
    const join = t.events ? { join_restriction_policy: { join_condition: "JOIN_ALL" as const, join_allowed_columns: [unit] } } : {};
    const policy: BigQueryPrivacyPolicy = noise
      ? {
          differential_privacy_policy: {
            privacy_unit_column: unit,
            max_epsilon_per_query: eps,
            epsilon_budget: Math.max(eps, x.budget?.epsilon ?? eps),
            delta_per_query: delta,
            delta_budget: Math.max(delta, x.budget?.delta ?? delta),
            max_groups_contributed: t.events || t.groupBy.length === 0 ? 1 : (t.contribution?.maxRowsPerUnit ?? 1),
          },
          ...join,
        }
      : { aggregation_threshold_policy: { threshold: x.minimum, privacy_unit_column: unit }, ...join };
    const view = `clean_room.${i.dataset}_view`;
    return {
      view,
      privacyPolicy: policy,
      ddl: `CREATE OR REPLACE VIEW \`${view}\`\nOPTIONS (privacy_policy = '${JSON.stringify(policy)}')\nAS SELECT * FROM \`${i.owner}.${i.dataset}\``,
    };
  });
  const artefacts = {
    views,
    query: e.sql,
    queryParameters: e.params.map((p) => ({
      name: p.name,
      parameterType: p.list
        ? { type: "ARRAY" as const, arrayType: { type: "STRING" as const } }
        : { type: p.type === "int" ? ("INT64" as const) : ("STRING" as const) },
    })),
  };
  const differences = [
    noise
      ? `noise: BigQuery adds its own noise (WITH DIFFERENTIAL_PRIVACY, ε = ${eps} per query` +
        `${templateNoise(t)!.mechanism.unit === "zCdp" ? " converted from the lab's ρ" : ""}, δ = ${delta}), not the lab's; ` +
        "it also drops groups by its own δ-based selection, so a group the lab would release can be missing"
      : `threshold: WITH AGGREGATION_THRESHOLD drops every group with fewer than ${x.minimum} distinct privacy units ` +
        "(the view's privacy_unit_column) — silently; the lab reports which rows it suppressed",
    `threshold: the lab's minimum (${x.minimum}, set by ${x.minimumFrom}) is also the SQL's final WHERE on the same distinct-unit count`,
    ...(noise
      ? [
          `budget: BigQuery's epsilon_budget/delta_budget are per view, shared by every subscriber's queries; the ` +
            `lab charges collaboration, party and dataset budgets`,
          "contribution bounds: BigQuery clamps each unit's per-group total to contribution_bounds_per_group (the " +
            "lab's clamp bounds, stated); the lab's row cap stays in the SQL",
        ]
      : []),
    "query shape: BigQuery checks queries against the views' analysis rules; the lab's per-person stage (GROUP " +
      "BY the privacy unit for row caps and clamps) may be refused on a rule-protected view — not verified against " +
      "BigQuery",
    "join: join_restriction_policy JOIN_ALL on the privacy unit column (the lab joins on matched identity only)",
    ...common(t, "bigquery"),
  ];
  return { artefacts: validate(BigQueryExport, artefacts, "bigquery"), differences };
}

function snowflakeExport(t: ParsedTemplate, x: ExportInputs, e: ExportedSql): { artefacts: SnowflakeExport; differences: string[] } {
  const noise = templateNoise(t);
  const name = sfName(t.name);
  const base = sfTable(t.base.owner, t.base.dataset);
  const ev = t.events ? sfTable(t.events.owner, t.events.dataset) : null;
  const joinPolicy = ev ? [`${base}:${x.unit}`, `${ev}:${t.events!.joinOn}`] : [];
  const cols = (alias: string) => {
    const set = new Set<string>();
    const add = (ref: string) => ref.split(".")[0] === alias && set.add(ref.split(".")[1]!);
    t.groupBy.forEach(add);
    t.filters.forEach((f) => {
      add(f.column);
      if ("column" in f.value) add(f.value.column);
    });
    t.aggregates.forEach((a) => "column" in a && add(a.column));
    t.contribution?.orderBy.forEach(add);
    return [...set].sort();
  };
  const columnPolicy = [
    ...cols(t.base.dataset).map((c) => `${name}:${base}:${c}`),
    ...(ev ? cols(t.events!.dataset).map((c) => `${name}:${ev}:${c}`) : []),
  ];
  const list = (xs: string[]) => `[${xs.map((s) => `'${s}'`).join(", ")}]`;
  const n = noise ? noise : null;
  const artefacts = {
    templateName: name,
    templateSql: e.sql,
    joinPolicy,
    columnPolicy,
    threshold: x.minimum,
    tables: { source_table: [base], my_table: ev ? [ev] : [] },
    calls: [
      `CALL samooha_by_snowflake_local_db.provider.add_custom_sql_template($cleanroom_name, '${name}', $$\n${e.sql}\n$$);`,
      `CALL samooha_by_snowflake_local_db.provider.set_join_policy($cleanroom_name, ${list(joinPolicy)});`,
      `CALL samooha_by_snowflake_local_db.provider.set_column_policy($cleanroom_name, ${list(columnPolicy)});`,
    ],
    ...(n
      ? {
          privacyPolicy:
            `CREATE PRIVACY POLICY ${name}_dp AS () RETURNS PRIVACY_BUDGET -> PRIVACY_BUDGET(BUDGET_NAME => '${name}', ` +
            `BUDGET_LIMIT => ${x.budget?.epsilon ?? bigQueryEpsilon(t, x)}, MAX_BUDGET_PER_AGGREGATE => ${Number(n.budget.num) / Number(n.budget.den)});`,
        }
      : {}),
  };
  const differences = [
    `threshold: Snowflake checks no minimum for a custom template; the lab's minimum (${x.minimum} distinct ` +
      `${x.unit}, set by ${x.minimumFrom}) is the template SQL's final WHERE — review the SQL, it is the control`,
    "policies: join and column policies limit which columns a consumer's template may touch; they do not pin values or parameters",
    "no aggregation policy is exported: the lab's per-person stage groups by the privacy unit, which an entity-level " +
      "aggregation policy would fold into its remainder group",
    "parameters: Jinja values come from the consumer; `{{ x }}` is a bind variable (JinjaSQL), `| inclause` a list; types are not declared",
    ...(n
      ? [
          "noise: with a privacy policy Snowflake adds its own noise and tracks its own budget per consumer (MAX_BUDGET_PER_AGGREGATE " +
            "= the lab's per-aggregate budget, stated); not the lab's noise — and Snowflake's DP restricts query shapes " +
            "(not verified against Snowflake)",
        ]
      : ["noise: none (threshold only): like the lab, NOT differentially private"]),
    ...common(t, "snowflake"),
  ];
  return { artefacts: validate(SnowflakeExport, artefacts, "snowflake"), differences };
}

/**
 * Export a parsed template to `target` with the room's facts; validated against the target's schema.
 *
 * @example
 * const aws = exportTemplate(t, "aws", { unit: "join_key", minimum: 100, minimumFrom: "template", rules });
 * aws.artefacts.analysisTemplate.source.text // "-- cleanroom-lab design v1 sha256:… WITH b AS (…)"
 */
export function exportTemplate(t: ParsedTemplate, target: Target, x: ExportInputs): TargetExport {
  const e = exportSql(t, target, { unit: x.unit, minimum: x.minimum, ...(x.budget?.delta !== undefined ? { delta: x.budget.delta } : {}) });
  const made = target === "aws" ? awsExport(t, x, e) : target === "bigquery" ? bigQueryExport(t, x, e) : snowflakeExport(t, x, e);
  const files: ExportFile[] = [];
  const json = (name: string, v: unknown) => files.push({ name, language: "json", text: JSON.stringify(v, null, 2) });
  if (target === "aws") {
    const a = made.artefacts as AwsExport;
    files.push({ name: "analysis-template.sql", language: "sql", text: a.analysisTemplate.source.text });
    json("create-analysis-template.json", a.analysisTemplate);
    a.configuredTableAnalysisRules.forEach((r) =>
      json(`analysis-rule-${r.configuredTableIdentifier}-${r.analysisRuleType.toLowerCase()}.json`, r),
    );
    if (a.privacyBudgetTemplate) json("privacy-budget-template.json", a.privacyBudgetTemplate);
  } else if (target === "bigquery") {
    const b = made.artefacts as BigQueryExport;
    files.push({ name: "query.sql", language: "sql", text: b.query });
    b.views.forEach((v) => files.push({ name: `${v.view}.sql`, language: "sql", text: v.ddl }));
    json("query-parameters.json", b.queryParameters);
  } else {
    const s = made.artefacts as SnowflakeExport;
    files.push({ name: `${s.templateName}.sql.j2`, language: "sql", text: s.templateSql });
    files.push({
      name: "provider-calls.sql",
      language: "sql",
      text: [...s.calls, ...(s.privacyPolicy ? [s.privacyPolicy] : [])].join("\n"),
    });
  }
  return {
    target,
    templateName: t.name,
    templateHash: t.hash,
    artefacts: made.artefacts,
    files,
    differences: made.differences,
    shims: SHIMS[target],
    sql: e,
  };
}
