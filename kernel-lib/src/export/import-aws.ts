/**
 * AWS Clean Rooms JSON → a lab design, so a production policy can be tried here against
 * synthetic data before real budget is spent.
 *
 * Reads: configured-table analysis rules (AGGREGATION rules become the lab's AWS-shaped rules,
 * keyed "owner/dataset" through `owners`; CUSTOM rules give the pinned analysis template ARN and
 * the DP column), a privacy budget template (→ the room budget: ε, monthly refresh), and an
 * analysis template exported by the lab: its SQL carries the lab design (first two comment
 * lines); the import re-exports that design and requires the SQL to be exactly what the lab
 * writes for it, so an analysis template edited after export is refused rather than half-read.
 * Arbitrary Spark SQL is NOT parsed into a template (the lab's templates are plans as data).
 *
 * Refusals: `TEMPLATE_INVALID` / `RULE_INVALID` naming the `aws.…` field; nothing is changed.
 */
import { z } from "zod";
import { CleanRoomError } from "../errors.js";
import { parseTemplate, type ParsedTemplate } from "../cleanroom/template.js";
import { parseAnalysisRule, type AnalysisRuleAggregation } from "../cleanroom/rules.js";
import { AwsAnalysisTemplate, AwsConfiguredTableAnalysisRule, AwsPrivacyBudgetTemplate } from "./schemas.js";
import { exportSql } from "./sql.js";
import { DESIGN_MARK, exportTemplate, type ExportInputs } from "./targets.js";

/** What `importAws` reads: the AWS request bodies (all optional but at least one rule). */
export const AwsImport = z.strictObject({
  analysisTemplate: AwsAnalysisTemplate.optional(),
  configuredTableAnalysisRules: z.array(AwsConfiguredTableAnalysisRule).min(1),
  privacyBudgetTemplate: AwsPrivacyBudgetTemplate.optional(),
});

/** A lab design read from AWS JSON. */
export interface ImportedDesign {
  /** The template (only when an analysis template exported by the lab was given). */
  template: ParsedTemplate | null;
  /** Each configured table's AGGREGATION rule as a lab rule, keyed "owner/dataset". */
  rules: Record<string, AnalysisRuleAggregation>;
  /** The room budget the privacy budget template states (AWS ε is per collaboration). */
  budget: { epsilon: number; refresh: "none" | "monthly" } | null;
  /** The privacy-unit column of each table with a DP rule, keyed by configured table. */
  dpColumns: Record<string, string>;
  /** What `exportTemplate` needs to write the same AWS JSON again. */
  exportInputs: ExportInputs | null;
}

/** The path of the first difference between two JSON values, or null. */
function firstDifference(a: unknown, b: unknown, at: string[]): string | null {
  if (a === b) return null;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null || Array.isArray(a) !== Array.isArray(b))
    return at.join(".");
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  for (const k of keys) {
    const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], [...at, k]);
    if (d) return d;
  }
  return null;
}

function fail(code: "TEMPLATE_INVALID" | "RULE_INVALID", field: string, expected: string): never {
  throw new CleanRoomError(code, `"${field}" expected ${expected}`, { field, expected });
}

/**
 * Read AWS JSON into a lab design. `owners` maps configured table names to lab owners (a
 * template exported by the lab names them itself).
 *
 * @example
 * const d = importAws(awsJson); d.template?.hash // the approved hash the export came from
 */
export function importAws(input: unknown, owners: Record<string, string> = {}): ImportedDesign {
  const r = AwsImport.safeParse(input);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const field = ["aws", ...i.path.map(String)].join(".");
    throw new CleanRoomError(
      field.includes("Rule") || field.includes("Budget") ? "RULE_INVALID" : "TEMPLATE_INVALID",
      `"${field}" ${i.message}`,
      { field },
    );
  }
  const aws = r.data;
  let template: ParsedTemplate | null = null;
  let design: { unit: string; minimum: number; minimumFrom: string } | null = null;
  const owner = new Map(Object.entries(owners));
  if (aws.analysisTemplate) {
    const field = "aws.analysisTemplate.source.text";
    const [first, second, ...rest] = aws.analysisTemplate.source.text.split("\n");
    const m = first?.startsWith(DESIGN_MARK) ? /^sha256:([0-9a-f]{64})$/.exec(first.slice(DESIGN_MARK.length)) : null;
    if (!m || !second?.startsWith("-- "))
      fail(
        "TEMPLATE_INVALID",
        field,
        "an analysis template exported by cleanroom-lab (its design line); arbitrary Spark SQL is not parsed",
      );
    let parsed: { template: unknown; unit: string; minimum: number; minimumFrom: string };
    try {
      parsed = JSON.parse(second.slice(3)) as typeof parsed;
    } catch {
      fail("TEMPLATE_INVALID", field, "a JSON design line");
    }
    template = parseTemplate(parsed.template);
    if (template.hash !== m[1]) fail("TEMPLATE_INVALID", field, "a design whose hash matches its sha256 line");
    if (typeof parsed.unit !== "string" || !Number.isSafeInteger(parsed.minimum) || typeof parsed.minimumFrom !== "string")
      fail("TEMPLATE_INVALID", field, "a design line with unit, minimum and minimumFrom");
    design = { unit: parsed.unit, minimum: parsed.minimum, minimumFrom: parsed.minimumFrom };
    const again = exportSql(template, "aws", { unit: design.unit, minimum: design.minimum }).sql;
    if (rest.join("\n") !== again)
      fail(
        "TEMPLATE_INVALID",
        field,
        "the SQL the lab writes for the design it carries (it was edited after export; re-export from the lab)",
      );
    owner.set(template.base.dataset, owner.get(template.base.dataset) ?? template.base.owner);
    if (template.events) owner.set(template.events.dataset, owner.get(template.events.dataset) ?? template.events.owner);
  }
  const rules: Record<string, AnalysisRuleAggregation> = {};
  const dpColumns: Record<string, string> = {};
  let templateArn: string | undefined;
  aws.configuredTableAnalysisRules.forEach((rule, i) => {
    const table = rule.configuredTableIdentifier;
    const field = `aws.configuredTableAnalysisRules.${i}`;
    if (rule.analysisRuleType === "AGGREGATION") {
      const o =
        owner.get(table) ??
        fail("RULE_INVALID", `${field}.configuredTableIdentifier`, `a table with an owner (pass owners: { ${table}: "<party>" })`);
      const a = rule.analysisRulePolicy.v1.aggregation;
      const lab = parseAnalysisRule({
        type: "AGGREGATION",
        aggregateColumns: a.aggregateColumns
          .filter((c) => c.function !== "SUM_DISTINCT")
          .map((c) => ({ columnNames: [...c.columnNames], function: c.function as "SUM" })),
        dimensionColumns: [...a.dimensionColumns],
        joinColumns: [...a.joinColumns],
        ...(a.joinRequired ? { joinRequired: a.joinRequired } : {}),
        ...(a.allowedJoinOperators ? { allowedJoinOperators: [...a.allowedJoinOperators] } : {}),
        outputConstraints: a.outputConstraints.map((c) => ({ ...c })),
        ...(a.scalarFunctions.length ? { scalarFunctions: [...a.scalarFunctions] } : {}),
        ...(a.additionalAnalyses ? { additionalAnalyses: a.additionalAnalyses } : {}),
      });
      if (a.aggregateColumns.some((c) => c.function === "SUM_DISTINCT"))
        fail(
          "RULE_INVALID",
          `${field}.analysisRulePolicy.v1.aggregation.aggregateColumns`,
          "SUM, AVG, COUNT or COUNT_DISTINCT (the lab has no SUM_DISTINCT)",
        );
      rules[`${o}/${table}`] = lab as AnalysisRuleAggregation;
    } else {
      const c = rule.analysisRulePolicy.v1.custom;
      const arn = c.allowedAnalyses.find((x) => x !== "ANY_QUERY");
      if (!arn)
        fail(
          "RULE_INVALID",
          `${field}.analysisRulePolicy.v1.custom.allowedAnalyses`,
          "an analysis template ARN (the lab runs approved templates only, not ANY_QUERY)",
        );
      if (templateArn && arn !== templateArn)
        fail("RULE_INVALID", `${field}.analysisRulePolicy.v1.custom.allowedAnalyses`, "the same analysis template on every table");
      templateArn = arn;
      if (c.differentialPrivacy) dpColumns[table] = c.differentialPrivacy.columns[0]!.name;
    }
  });
  const pb = aws.privacyBudgetTemplate;
  const budget = pb
    ? {
        epsilon: pb.parameters.differentialPrivacy.epsilon,
        refresh: pb.autoRefresh === "CALENDAR_MONTH" ? ("monthly" as const) : ("none" as const),
      }
    : null;
  if (template && design) {
    if (!!template.noise !== Object.keys(dpColumns).length > 0)
      fail(
        "RULE_INVALID",
        "aws.configuredTableAnalysisRules",
        template.noise ? "a differentialPrivacy column for a noised template" : "no differentialPrivacy for a threshold-only template",
      );
    const want = new Map([
      [template.base.dataset, design.unit],
      ...(template.events ? [[template.events.dataset, template.events.joinOn] as const] : []),
    ]);
    const custom = aws.configuredTableAnalysisRules.filter((r) => r.analysisRuleType === "CUSTOM").map((r) => r.configuredTableIdentifier);
    if (custom.length !== want.size || !custom.every((c) => want.has(c)))
      fail(
        "RULE_INVALID",
        "aws.configuredTableAnalysisRules",
        `one CUSTOM rule per input of the template (${[...want.keys()].join(", ")})`,
      );
    for (const [table, col] of Object.entries(dpColumns))
      if (want.get(table) !== col)
        fail(
          "RULE_INVALID",
          "aws.configuredTableAnalysisRules",
          `the differentialPrivacy column of ${table} to be its privacy unit ${want.get(table)}`,
        );
    if (!!template.noise !== !!pb)
      fail(
        "RULE_INVALID",
        "aws.privacyBudgetTemplate",
        template.noise ? "a privacy budget template for a noised template" : "none for a threshold-only template",
      );
  }
  const exportInputs: ExportInputs | null =
    template && design
      ? {
          ...design,
          rules,
          ...(budget ? { budget } : {}),
          aws: {
            name: aws.analysisTemplate!.name,
            description: aws.analysisTemplate!.description ?? null,
            ...(templateArn ? { templateArn } : {}),
            ...(pb ? { usersNoisePerQuery: pb.parameters.differentialPrivacy.usersNoisePerQuery } : {}),
          },
        }
      : null;
  if (template && exportInputs) {
    // everything else the AWS JSON says must be what the lab writes for this design, so the
    // design read here is the whole meaning of the JSON (and a round trip is stable)
    const again = JSON.parse(JSON.stringify(exportTemplate(template, "aws", exportInputs).artefacts)) as Record<string, unknown>;
    const path = firstDifference(again, JSON.parse(JSON.stringify(aws)) as unknown, ["aws"]);
    if (path) fail("TEMPLATE_INVALID", path, "what the lab exports for the design the analysis template carries");
  }
  return { template, rules, budget, dpColumns, exportInputs };
}
