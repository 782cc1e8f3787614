/**
 * The export's display payload (display/schema.ts kind "export"): each target's files, the
 * differences and shims side by side, with the DuckDB equivalence proof when it was run.
 */
import type { CleanRoomPayloadInput } from "../display/schema.js";
import type { Target } from "./sql.js";
import type { TargetExport } from "./targets.js";

/** What `exportDesign` returns: plain data (renders side by side in a notebook). */
export interface DesignExport {
  kind: "designExport";
  templateName: string;
  templateHash: string;
  /** Always true: only approved templates are exported. */
  approved: true;
  /** The effective minimum every target's SQL applies, and who set it. */
  minimum: { value: number; from: string };
  targets: TargetExport[];
}

/** Display names of the targets. */
export const TARGET_NAMES: Record<Target, string> = {
  aws: "AWS Clean Rooms",
  bigquery: "BigQuery data clean rooms",
  snowflake: "Snowflake data clean rooms",
};

/** The export's payload (display/schema.ts kind "export"); proofs attached when given. */
export function exportPayload(
  o: Pick<DesignExport, "templateName" | "templateHash" | "targets">,
  proofs: Partial<Record<Target, { equal: boolean; rows: number; suppressed: number; difference: string | null }>> = {},
): CleanRoomPayloadInput {
  return {
    kind: "export",
    version: 1,
    title: `Export — ${o.templateName}`,
    templateName: o.templateName,
    templateHash: o.templateHash,
    targets: o.targets.map((t) => ({
      target: t.target,
      name: TARGET_NAMES[t.target],
      files: t.files.map((f) => ({ ...f })),
      differences: [...t.differences],
      shims: [...t.shims],
      ...(proofs[t.target] ? { proof: proofs[t.target]! } : {}),
    })),
  };
}
