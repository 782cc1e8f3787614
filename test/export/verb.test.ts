/**
 * The notebook surface of issue 16: `exportDesign` at the door (approved templates only, no side
 * effect), its MIME bundle, the zod schemas refusing what the targets refuse, `importAwsDesign`
 * (round trip, edited SQL refused, a production rule tried on synthetic data) and `proveExport`.
 */
import { describe, expect, it } from "vitest";
import {
  addParty,
  approveTemplate,
  audit,
  budget,
  cleanRoomQuery,
  declarePurpose,
  exportDesign,
  isCleanRoomError,
  liftRules,
  liftSchemas,
  liftTemplate,
  openLab,
  upload,
  type Lab,
} from "../../kernel-lib/src/index.js";
import { importAwsDesign, proveExport } from "../../kernel-lib/src/labs.js";
import { MIMEBUNDLE_SYMBOL, type MimeBundle } from "../../kernel-lib/src/display/bundle.js";
import { CLEANROOM_MIME } from "../../kernel-lib/src/display/schema.js";
import {
  AwsAggregationRule,
  AwsPrivacyBudgetTemplate,
  BigQueryPrivacyPolicy,
  AwsAnalysisTemplate,
} from "../../kernel-lib/src/export/schemas.js";
import type { AwsExport, BigQueryExport, SnowflakeExport } from "../../kernel-lib/src/export/schemas.js";
import { studyRows } from "../dp/lab-fixture.js";

const T = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.25", threshold: 20, breakdown: "region" });
const EXACT = liftTemplate({ advertiser: "advertiser", retailer: "retailer", threshold: 30 });

/** Two owners upload a generated study under the given rules (adds the parties). */
async function uploadStudy(
  lab: Lab,
  seed: string,
  rules: { exposures: unknown; purchases: unknown },
): Promise<ReturnType<typeof studyRows>> {
  const data = studyRows(seed, 1500);
  const adv = addParty(lab, { party: "advertiser" });
  const ret = addParty(lab, { party: "retailer" });
  const s = liftSchemas();
  await upload(lab, {
    party: adv,
    name: "exposures",
    rows: data.exposures,
    schema: s.exposures,
    purposes: ["measurement"],
    rule: rules.exposures,
  });
  await upload(lab, {
    party: ret,
    name: "purchases",
    rows: data.purchases,
    schema: s.purchases,
    purposes: ["measurement"],
    rule: rules.purchases,
  });
  return data;
}

async function room(): Promise<{ lab: Lab; data: ReturnType<typeof studyRows> }> {
  const lab = openLab({ store: ":memory:", rng: { seed: "export-verb" }, budget: { epsilon: 4 } });
  const data = await uploadStudy(lab, "export-verb", { exposures: liftRules(25).exposures, purchases: liftRules(40).purchases });
  return { lab, data };
}

/** Ledger and audit chain tip (the audit view's signing time changes on every read). */
const state = (lab: Lab) => JSON.stringify([budget(lab).budgets, audit(lab).entries]);

const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (isCleanRoomError(e))
      return { code: e.code, field: (e.details as { field?: string }).field, door: (e.details as { door?: unknown }).door };
    throw e;
  }
  return null;
};

describe("exportDesign", () => {
  it("refuses a template not approved by every owner, before and after one approval, and changes nothing", async () => {
    const { lab } = await room();
    const before = state(lab);
    expect(codeOf(() => exportDesign(lab, { template: T, target: "aws" }))).toMatchObject({
      code: "QUERY_NOT_APPROVED",
      field: "template",
    });
    approveTemplate(lab, { template: T, party: "advertiser" });
    const e = codeOf(() => exportDesign(lab, { template: T, target: "all" }));
    expect(e).toMatchObject({ code: "QUERY_NOT_APPROVED" });
    approveTemplate(lab, { template: T, party: "retailer" });
    const after = state(lab);
    expect(exportDesign(lab, { template: T, target: "all" }).targets.map((t) => t.target)).toEqual(["aws", "bigquery", "snowflake"]);
    // the export itself wrote nothing (no audit entry, no charge)
    expect(state(lab)).toBe(after);
    expect(before).not.toBe(after); // positive control: approvals did write
  });

  it("refuses bad input at the door (unknown target, extra key) with no side effect", async () => {
    const { lab } = await room();
    expect(codeOf(() => exportDesign(lab, { template: T, target: "redshift" as never }))).toMatchObject({ code: "INPUT_INVALID" });
    expect(codeOf(() => exportDesign(lab, { template: T, target: "aws", sql: "x" } as never))).toMatchObject({ code: "INPUT_INVALID" });
  });

  it("refuses a template literal it cannot write safely in every dialect, naming the field (a parameter is the way)", async () => {
    const { lab } = await room();
    const quoted = {
      ...EXACT,
      filters: [...EXACT.filters!, { column: "purchases.category", op: "eq" as const, value: { literal: "kid's toys" } }],
    };
    const plain = {
      ...EXACT,
      filters: [...EXACT.filters!, { column: "purchases.category", op: "eq" as const, value: { literal: "toys" } }],
    };
    for (const t of [quoted, plain]) for (const p of ["advertiser", "retailer"]) approveTemplate(lab, { template: t, party: p });
    expect(codeOf(() => exportDesign(lab, { template: quoted, target: "snowflake" }))).toMatchObject({
      code: "TEMPLATE_INVALID",
      field: "template.filters.2.value.literal",
    });
    const ok = exportDesign(lab, { template: plain, target: "all" }); // positive control
    expect(ok.targets.every((t) => t.sql.sql.includes("'toys'"))).toBe(true);
  });

  it("exports the effective minimum (the owners' strictest rule), the budget, and renders side by side", async () => {
    const { lab, data } = await room();
    for (const p of ["advertiser", "retailer"]) approveTemplate(lab, { template: T, party: p });
    const ex = exportDesign(lab, { template: T, target: "all" });
    expect(ex.minimum).toEqual({ value: 40, from: "retailer/purchases" });
    const [aws, bq, sf] = ex.targets.map((t) => t.artefacts) as [AwsExport, BigQueryExport, SnowflakeExport];
    expect(aws.analysisTemplate.source.text).toContain("WHERE crl_units >= 40");
    expect(aws.configuredTableAnalysisRules.filter((r) => r.analysisRuleType === "CUSTOM")).toHaveLength(2);
    expect(aws.privacyBudgetTemplate?.parameters.differentialPrivacy.epsilon).toBe(4);
    expect(bq.query).toContain("WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = ");
    expect(bq.views[0]!.privacyPolicy).toHaveProperty("differential_privacy_policy.privacy_unit_column", "join_key");
    expect(sf.threshold).toBe(40);
    expect(sf.templateSql).toContain("{{ startDay }}");
    for (const t of ex.targets) expect(t.differences.some((d) => d.startsWith("noise:"))).toBe(true);
    const bundle = (ex as unknown as Record<symbol, () => MimeBundle>)[MIMEBUNDLE_SYMBOL]!();
    expect(bundle[CLEANROOM_MIME].kind).toBe("export");
    expect(bundle["text/html"]).toContain("BigQuery data clean rooms");
    expect(bundle["text/plain"]).toContain("enforced differently from the lab");
    // no value of the data in the export: the parameters are placeholders, and no join key appears
    const all = JSON.stringify(ex);
    expect(data.exposures.slice(0, 50).some((r) => all.includes(`"${r.join_key}"`))).toBe(false);

    const proof = await proveExport(ex, {
      template: T,
      params: { startDay: 0, endDay: 27 },
      datasets: {
        "advertiser/exposures": { rows: data.exposures, schema: liftSchemas().exposures, rule: liftRules(25).exposures },
        "retailer/purchases": { rows: data.purchases, schema: liftSchemas().purchases, rule: liftRules(40).purchases },
      },
    });
    expect(proof.allEqual).toBe(true);
    expect(Object.keys(proof.proofs)).toEqual(["aws", "bigquery", "snowflake"]);
    const pb = (proof as unknown as Record<symbol, () => MimeBundle>)[MIMEBUNDLE_SYMBOL]!();
    expect(pb["text/plain"]).toContain("✓ same answer as the lab on DuckDB");
  });
});

describe("the target schemas refuse what the targets refuse", () => {
  it("AWS: minimum < 2, ε outside 1–20, noise per query outside 10–100, a bad template name", () => {
    const rule = {
      aggregateColumns: [{ columnNames: ["v"], function: "SUM" }],
      joinColumns: ["k"],
      dimensionColumns: [],
      scalarFunctions: [],
      outputConstraints: [{ columnName: "k", minimum: 2, type: "COUNT_DISTINCT" }],
    };
    expect(AwsAggregationRule.safeParse(rule).success).toBe(true);
    expect(
      AwsAggregationRule.safeParse({ ...rule, outputConstraints: [{ columnName: "k", minimum: 1, type: "COUNT_DISTINCT" }] }).success,
    ).toBe(false);
    expect(AwsAggregationRule.safeParse({ ...rule, scalarFunctions: ["MD5"] }).success).toBe(false);
    const pb = (epsilon: number, usersNoisePerQuery: number) => ({
      autoRefresh: "NONE",
      privacyBudgetType: "DIFFERENTIAL_PRIVACY",
      parameters: { differentialPrivacy: { epsilon, usersNoisePerQuery } },
    });
    expect(AwsPrivacyBudgetTemplate.safeParse(pb(20, 10)).success).toBe(true);
    expect(AwsPrivacyBudgetTemplate.safeParse(pb(21, 10)).success).toBe(false);
    expect(AwsPrivacyBudgetTemplate.safeParse(pb(1.5, 10)).success).toBe(false);
    expect(AwsPrivacyBudgetTemplate.safeParse(pb(3, 9)).success).toBe(false);
    expect(AwsAnalysisTemplate.safeParse({ name: "ok name", format: "SQL", source: { text: "SELECT 1" } }).success).toBe(true);
    expect(AwsAnalysisTemplate.safeParse({ name: "bad (ε)", format: "SQL", source: { text: "SELECT 1" } }).success).toBe(false);
  });

  it("BigQuery: δ must be < 1, ε > 0, one policy kind per view", () => {
    const dp = {
      privacy_unit_column: "id",
      max_epsilon_per_query: 1,
      epsilon_budget: 10,
      delta_per_query: 1e-7,
      delta_budget: 1e-6,
      max_groups_contributed: 1,
    };
    expect(BigQueryPrivacyPolicy.safeParse({ differential_privacy_policy: dp }).success).toBe(true);
    expect(BigQueryPrivacyPolicy.safeParse({ differential_privacy_policy: { ...dp, delta_per_query: 1 } }).success).toBe(false);
    expect(BigQueryPrivacyPolicy.safeParse({ differential_privacy_policy: { ...dp, max_epsilon_per_query: 0 } }).success).toBe(false);
    expect(
      BigQueryPrivacyPolicy.safeParse({
        differential_privacy_policy: dp,
        aggregation_threshold_policy: { threshold: 5, privacy_unit_column: "id" },
      }).success,
    ).toBe(false);
  });
});

describe("importAwsDesign", () => {
  it("round trip: AWS JSON → lab design → AWS JSON is identical, for a noised and an exact template", async () => {
    const { lab } = await room();
    for (const t of [T, EXACT]) {
      for (const p of ["advertiser", "retailer"]) approveTemplate(lab, { template: t, party: p });
      const aws = JSON.parse(JSON.stringify(exportDesign(lab, { template: t, target: "aws" }).targets[0]!.artefacts)) as AwsExport;
      const d = importAwsDesign(lab, { aws });
      expect(d.rules["retailer/purchases"]!.outputConstraints[0]!.minimum).toBe(40);
      const again = exportDesign(lab, { template: d.template!, target: "aws" }).targets[0]!.artefacts;
      expect(JSON.parse(JSON.stringify(again))).toEqual(aws);
    }
  });

  it("refuses an analysis template whose SQL was edited after export (threshold lowered), naming the field", async () => {
    const { lab } = await room();
    for (const p of ["advertiser", "retailer"]) approveTemplate(lab, { template: EXACT, party: p });
    const aws = JSON.parse(JSON.stringify(exportDesign(lab, { template: EXACT, target: "aws" }).targets[0]!.artefacts)) as AwsExport;
    expect(importAwsDesign(lab, { aws }).template).not.toBeNull(); // positive control
    aws.analysisTemplate.source.text = aws.analysisTemplate.source.text.replace("crl_units >= 40", "crl_units >= 2");
    expect(codeOf(() => importAwsDesign(lab, { aws }))).toMatchObject({
      code: "TEMPLATE_INVALID",
      field: "aws.analysisTemplate.source.text",
    });
    aws.analysisTemplate.source.text = "SELECT region, COUNT(DISTINCT join_key) FROM exposures GROUP BY region";
    expect(codeOf(() => importAwsDesign(lab, { aws }))).toMatchObject({
      code: "TEMPLATE_INVALID",
      field: "aws.analysisTemplate.source.text",
    });
  });

  it("a production AGGREGATION rule written for AWS runs here on synthetic data, with its minimum", async () => {
    const production = {
      configuredTableAnalysisRules: [
        {
          configuredTableIdentifier: "purchases",
          analysisRuleType: "AGGREGATION",
          analysisRulePolicy: {
            v1: {
              aggregation: {
                aggregateColumns: [{ columnNames: ["value_cents"], function: "SUM" }],
                joinColumns: ["join_key"],
                joinRequired: "QUERY_RUNNER",
                allowedJoinOperators: ["AND"],
                dimensionColumns: ["purchase_day", "store_region", "category"],
                scalarFunctions: [],
                outputConstraints: [{ columnName: "join_key", minimum: 60, type: "COUNT_DISTINCT" }],
              },
            },
          },
        },
      ],
    };
    const lab = openLab({ store: ":memory:", rng: { seed: "export-import" }, budget: { epsilon: 4 } });
    const d = importAwsDesign(lab, { aws: production, owners: { purchases: "retailer" } });
    expect(codeOf(() => importAwsDesign(lab, { aws: production }))).toMatchObject({ code: "RULE_INVALID" });
    await uploadStudy(lab, "synthetic", { exposures: liftRules(20).exposures, purchases: d.rules["retailer/purchases"]! });
    declarePurpose(lab, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "try the production rule" });
    for (const p of ["advertiser", "retailer"]) approveTemplate(lab, { template: EXACT, party: p });
    const r = await cleanRoomQuery(lab, {
      template: EXACT,
      params: { startDay: 0, endDay: 27 },
      party: "advertiser",
      analyst: "bo",
      purpose: "measurement",
    });
    expect((r as { suppressed: { minimum: number; minimumFrom: string } }).suppressed).toMatchObject({
      minimum: 60,
      minimumFrom: "retailer/purchases",
    });
    // and back: the lab rule exports as the same AWS aggregation rule
    const aws = exportDesign(lab, { template: EXACT, target: "aws" }).targets[0]!.artefacts as AwsExport;
    const agg = aws.configuredTableAnalysisRules.find(
      (x) => x.analysisRuleType === "AGGREGATION" && x.configuredTableIdentifier === "purchases",
    );
    expect(agg).toEqual(production.configuredTableAnalysisRules[0]);
  });
});
