/**
 * BigQuery and Snowflake data clean room artefacts: BigQuery views with their analysis rules and
 * the query with its threshold/DP clause and typed parameters; the Snowflake JinjaSQL template,
 * its join and column policies, the provider calls and (noised) a privacy policy.
 */
import { templateNoise, type ParsedTemplate } from "../cleanroom/template.js";
import { bigQueryEpsilon, DEFAULT_DELTA, type ExportedSql } from "./sql.js";
import { BigQueryExport, SnowflakeExport, type BigQueryPrivacyPolicy } from "./schemas.js";
import { common, inputs, validate, type ExportInputs } from "./common.js";

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
export function bigQueryExport(t: ParsedTemplate, x: ExportInputs, e: ExportedSql): { artefacts: BigQueryExport; differences: string[] } {
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

export function snowflakeExport(t: ParsedTemplate, x: ExportInputs, e: ExportedSql): { artefacts: SnowflakeExport; differences: string[] } {
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
    "identifiers are double-quoted, so case-sensitive in Snowflake: the tables' column names must be spelled as in the lab (lower case)",
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
