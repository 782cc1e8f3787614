/**
 * `exportDesign` and `importAwsDesign`: from the lab to production and back.
 *
 * `exportDesign(lab, { template, target })` writes an APPROVED template (approved in this room
 * by every owner of its inputs) for AWS Clean Rooms, BigQuery and/or Snowflake data clean rooms:
 * the target's API bodies and SQL (validated against zod schemas of the target's shapes), and
 * what the target enforces differently from the lab. The room's facts it reads are schema and
 * policy only (privacy-unit column, owners' rules, effective minimum, budget) — never a value.
 * Side effects: none (nothing charged, approved or written).
 *
 * `importAwsDesign(lab, { aws, owners })` reads AWS JSON back into a lab design (export/import-aws.ts):
 * the rules to upload synthetic data with, the template, the budget. Side effects: none.
 *
 * Threat model: as door.ts. A template exported before approval would hand a warehouse an
 * unreviewed plan, so it is refused (`QUERY_NOT_APPROVED`, naming the owners still to approve).
 */
import { z } from "zod";
import { CleanRoomError } from "../errors.js";
import type { Lab } from "../session.js";
import { internals } from "../session/lab.js";
import { parseTemplate, type TemplateInput } from "../cleanroom/template.js";
import { checkTemplate } from "../cleanroom/plan.js";
import type { AnalysisRuleAggregation } from "../cleanroom/rules.js";
import { exportTemplate, type ExportInputs } from "../export/targets.js";
import type { DesignExport } from "../export/payload.js";
import { TARGETS, type Target } from "../export/sql.js";
import { importAws, type ImportedDesign } from "../export/import-aws.js";
import { withMimeBundle } from "../display/bundle.js";
import { exportPayload } from "../export/payload.js";
import { parseAtDoor, requireLab, shortName, templateArg } from "./door.js";

const TargetArg = z.enum(["aws", "bigquery", "snowflake"]);
const ExportInput = z.strictObject({
  template: templateArg,
  /** One target, several (side by side), or "all". */
  target: z.union([TargetArg, z.array(TargetArg).min(1).max(3), z.literal("all")]),
});

/** What {@link exportDesign} takes. */
export interface ExportDesignInput {
  /** The approved template (plan data) or its hash. */
  template: TemplateInput | string;
  target: Target | Target[] | "all";
}

/** The room's facts for an export (schema and policy only). */
export function exportInputsOf(lab: Lab, template: unknown): { t: ReturnType<typeof parseTemplate>; inputs: ExportInputs } {
  const { room } = internals(lab);
  const t = parseTemplate(room.resolveTemplate(template));
  const ctx = room.planContext();
  const checked = checkTemplate(t, ctx);
  const rules: Record<string, AnalysisRuleAggregation> = {};
  for (const i of [t.base, ...(t.events ? [t.events] : [])]) {
    const r = ctx.rule(i.owner, i.dataset);
    if (r?.type === "AGGREGATION") rules[`${i.owner}/${i.dataset}`] = r;
  }
  const b = room.budgetConfig;
  const num = (v: string | number | undefined) => (v === undefined ? undefined : Number(v));
  const budget: ExportInputs["budget"] = b
    ? {
        ...(b.epsilon !== undefined ? { epsilon: num(b.epsilon)! } : {}),
        ...(b.delta !== undefined ? { delta: num(b.delta)! } : {}),
        ...(b.rho !== undefined ? { rho: num(b.rho)! } : {}),
        ...(b.refresh ? { refresh: b.refresh } : {}),
      }
    : undefined;
  return {
    t,
    inputs: {
      unit: ctx.dataset(t.base.owner, t.base.dataset).schema.privacyUnit,
      minimum: checked.minimum,
      minimumFrom: checked.minimumFrom,
      rules,
      ...(budget ? { budget } : {}),
    },
  };
}

/**
 * Export an approved template to warehouse clean rooms: each target's API JSON and SQL,
 * validated against the target's schema, with what the target enforces differently.
 *
 * @example
 * const ex = exportDesign(lab, { template: basket, target: "all" });
 * ex.targets[0].artefacts.analysisTemplate.source.text // the AWS analysis template's SQL
 */
export function exportDesign(lab: Lab, input: ExportDesignInput): DesignExport {
  const l = requireLab(lab, "exportDesign");
  const q = parseAtDoor(ExportInput, input, "input");
  const { room } = internals(l);
  const { t, inputs } = exportInputsOf(l, q.template);
  let approved = false;
  let missing: string[] = [];
  try {
    const st = room.templates.status(t.hash);
    approved = st.approved;
    missing = st.owners.filter((o) => !st.approvedBy.includes(o));
  } catch {
    missing = [...new Set([t.base.owner, ...(t.events ? [t.events.owner] : [])])];
  }
  if (!approved)
    throw new CleanRoomError(
      "QUERY_NOT_APPROVED",
      `"template" expected a template every owner approved in this room before it is exported; still to approve: ${missing.join(", ")}`,
      { field: "template", missing },
    );
  const targets = q.target === "all" ? [...TARGETS] : Array.isArray(q.target) ? [...new Set(q.target)] : [q.target];
  const out: DesignExport = {
    kind: "designExport",
    templateName: t.name,
    templateHash: t.hash,
    approved: true,
    minimum: { value: inputs.minimum, from: inputs.minimumFrom },
    targets: targets.map((target) => exportTemplate(t, target, inputs)),
  };
  return withMimeBundle(out, (o) => exportPayload(o));
}

const ImportInput = z.strictObject({
  aws: z.record(z.string(), z.unknown()),
  /** Configured table name → lab party, for rules not tied to an exported template. */
  owners: z.record(z.string().max(128), shortName).optional(),
});

/**
 * Read AWS Clean Rooms JSON (analysis template exported by the lab, configured-table analysis
 * rules, privacy budget template) back into a lab design. Changes nothing in the lab.
 *
 * @example
 * const d = importAwsDesign(lab, { aws: awsJson }); d.template.hash === ex.templateHash // true
 */
export function importAwsDesign(lab: Lab, input: { aws: object; owners?: Record<string, string> }): ImportedDesign {
  requireLab(lab, "importAwsDesign");
  const q = parseAtDoor(ImportInput, input, "input");
  return importAws(q.aws, q.owners ?? {});
}

export { TARGETS, type DesignExport };
