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
import type { ParsedTemplate } from "../cleanroom/template.js";
import { exportSql, type Target } from "./sql.js";
import { SHIMS } from "./shims.js";
import type { AwsExport, BigQueryExport, SnowflakeExport } from "./schemas.js";
import type { ExportFile, ExportInputs, TargetExport } from "./common.js";
import { awsExport } from "./aws.js";
import { bigQueryExport, snowflakeExport } from "./warehouses.js";

export type { ExportFile, ExportInputs, TargetExport } from "./common.js";
export { DESIGN_MARK, awsTemplateArn, toAwsAggregationRule } from "./aws.js";

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
