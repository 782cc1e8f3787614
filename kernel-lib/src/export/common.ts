/**
 * What every target's export shares: the room facts it reads, its shape, schema validation and
 * the differences every target has from the lab.
 */
import type { z } from "zod";
import { CleanRoomError } from "../errors.js";
import type { AnalysisRuleAggregation } from "../cleanroom/rules.js";
import type { Template } from "../cleanroom/template.js";
import { allParamsGuarded, type ExportedSql, type Target } from "./sql.js";
import type { AwsExport, BigQueryExport, SnowflakeExport } from "./schemas.js";

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
  aws?: { name?: string; description?: string | null; templateArn?: string; usersNoisePerQuery?: number };
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

/** Validate an export against the target's schema; a mismatch is a bug of the exporter (`INTERNAL`). */
export function validate<S extends z.ZodType>(schema: S, value: unknown, target: Target): z.output<S> {
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

export const inputs = (t: Template) => [
  { side: "base" as const, ...t.base },
  ...(t.events ? [{ side: "events" as const, owner: t.events.owner, dataset: t.events.dataset }] : []),
];

/** Differences every target shares. */
export function common(t: Template, target: Target): string[] {
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
