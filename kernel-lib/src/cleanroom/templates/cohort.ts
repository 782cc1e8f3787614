/**
 * The cohort-study templates of a hospital × pathology-lab joint research room (notebook 11):
 * patients and mean HbA1c by diagnosis × age band over the patients both parties hold
 * (inner join on the PSI join key; one lab result per patient, the earliest).
 *
 *   table        the published table: cells with their row, column and grand totals, small
 *                cells withheld with complementary suppression (threshold style `complementary`)
 *   cellsOnly    the same cells with primary suppression only (`drop`) — and the three totals
 *   byDiagnosis, byAgeBand, overall   as separate templates: what a naive publication releases,
 *                and what the margin-recovery attack combines (the positive control)
 *
 * Exact (noise-free) releases, as health statistics publish them; the threshold of 11 is the
 * CMS cell-size rule (counts 1–10 are not shown). The owners' rules set the same minimum.
 */
import type { AnalysisRuleAggregation } from "../rules.js";
import type { DatasetSchema } from "../dataset.js";
import type { TemplateInput } from "../template.js";
import { AGE_BANDS, DIAGNOSES } from "../../datasets/hospitals.js";

export interface CohortTemplateOptions {
  hospital: string;
  lab: string;
  admissions?: string;
  labResults?: string;
  /** Smallest cell published (default 11: counts 1–10 withheld). */
  minimum?: number;
}

/** Schemas of the hospital's admissions and the lab's results after PSI (join_key replaces the e-mail). */
export function cohortSchemas(): { admissions: DatasetSchema; labResults: DatasetSchema } {
  return {
    admissions: {
      privacyUnit: "join_key",
      columns: {
        join_key: { type: "string" },
        diagnosis: { type: "enum", values: [...DIAGNOSES] },
        age_band: { type: "enum", values: [...AGE_BANDS] },
      },
    },
    labResults: {
      privacyUnit: "join_key",
      columns: {
        join_key: { type: "string" },
        hba1c: { type: "int", min: 20, max: 150 },
        test_day: { type: "int", min: 0, max: 365 },
      },
    },
  };
}

/** The owners' aggregation rules: join required, dimensions / AVG only, at least `minimum` patients per row. */
export function cohortRules(minimum = 11): { admissions: AnalysisRuleAggregation; labResults: AnalysisRuleAggregation } {
  const oc = [{ columnName: "join_key", minimum, type: "COUNT_DISTINCT" as const }];
  return {
    admissions: {
      type: "AGGREGATION",
      aggregateColumns: [],
      dimensionColumns: ["diagnosis", "age_band"],
      joinColumns: ["join_key"],
      joinRequired: true,
      allowedJoinOperators: ["AND"],
      outputConstraints: oc,
    },
    labResults: {
      type: "AGGREGATION",
      aggregateColumns: [{ columnNames: ["hba1c"], function: "AVG" }],
      dimensionColumns: ["test_day"],
      joinColumns: ["join_key"],
      joinRequired: true,
      allowedJoinOperators: ["AND"],
      outputConstraints: oc,
    },
  };
}

/**
 * The study's templates (see the module header).
 *
 * @example
 * const t = cohortTemplates({ hospital: "hospital", lab: "pathlab" });
 * approveTemplate(lab, { template: t.table, party: "hospital", executor: "enclave" })
 */
export function cohortTemplates(
  o: CohortTemplateOptions,
): Record<"table" | "cellsOnly" | "byDiagnosis" | "byAgeBand" | "overall", TemplateInput> {
  const adm = o.admissions ?? "admissions";
  const res = o.labResults ?? "lab_results";
  const minimum = o.minimum ?? 11;
  const make = (name: string, groupBy: string[], style: "drop" | "complementary"): TemplateInput => ({
    version: 1,
    name,
    base: { owner: o.hospital, dataset: adm },
    events: { owner: o.lab, dataset: res, joinOn: "join_key", join: "inner" },
    groupBy,
    contribution: { maxRowsPerUnit: 1, orderBy: [`${res}.test_day`] },
    aggregates: [
      { name: "patients", fn: "countUnits" },
      { name: "mean_hba1c", fn: "avg", column: `${res}.hba1c`, bounds: [20, 150] },
    ],
    threshold: { minimum, style },
  });
  const dims = [`${adm}.diagnosis`, `${adm}.age_band`];
  return {
    table: make("HbA1c cohort by diagnosis and age band (with totals, complementary suppression)", dims, "complementary"),
    cellsOnly: make("HbA1c cohort by diagnosis and age band (primary suppression only)", dims, "drop"),
    byDiagnosis: make("HbA1c cohort by diagnosis", [dims[0]!], "drop"),
    byAgeBand: make("HbA1c cohort by age band", [dims[1]!], "drop"),
    overall: make("HbA1c cohort overall", [], "drop"),
  };
}
