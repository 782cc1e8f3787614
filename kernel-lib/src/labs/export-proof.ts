/**
 * `proveExport`: run an export's SQL (shimmed, parameters bound) on DuckDB over the same rows the
 * notebook uploaded, and compare with the lab's un-noised answer (export/prove.ts). A teaching and
 * verification tool: it takes the rows from the caller (who holds them anyway — the notebook
 * generated and uploaded them), never from the room, so it reads nothing the lab protects.
 *
 * It returns whether each target's export gives the same released rows and the same suppressed
 * groups, and how many — never the rows themselves (for a noised template those exact numbers are
 * exactly what the lab does not release).
 */
import { aq } from "../cleanroom/arquero.js";
import { DatasetCatalog, type Table } from "../cleanroom/dataset.js";
import { roomContext } from "../cleanroom/query.js";
import { checkTemplate } from "../cleanroom/plan.js";
import { parseAnalysisRule, type AnalysisRule } from "../cleanroom/rules.js";
import { parseTemplate, validateParams } from "../cleanroom/template.js";
import { CleanRoomError } from "../errors.js";
import { ExportRunner, proveEquivalent } from "../export/prove.js";
import { exportPayload, type DesignExport } from "../export/payload.js";
import type { Target } from "../export/sql.js";
import { withMimeBundle } from "../display/bundle.js";

/** One dataset as uploaded: rows, schema (with its privacy unit) and the owner's rule. */
export interface ProofDataset {
  rows: Record<string, unknown>[];
  schema: object;
  rule: object;
}

/** The proof per target. */
export interface ExportProof {
  kind: "exportProof";
  templateHash: string;
  proofs: Record<string, { equal: boolean; rows: number; suppressed: number; difference: string | null; shims: readonly string[] }>;
  /** True when every target's export gave the lab's answer. */
  allEqual: boolean;
}

/**
 * Prove an export against the lab on DuckDB over `datasets` (keyed "owner/dataset", the rows
 * that were uploaded), with run-time `params`.
 *
 * @example
 * const proof = await proveExport(ex, { params: { startDay: 0, endDay: 27 }, datasets: { "advertiser/exposures": { rows, schema, rule } } });
 * proof.allEqual // true
 */
export async function proveExport(
  ex: DesignExport,
  o: { template: object; params: Record<string, unknown>; datasets: Record<string, ProofDataset> },
): Promise<ExportProof> {
  const t = parseTemplate(o.template);
  if (t.hash !== ex.templateHash)
    throw new CleanRoomError(
      "TEMPLATE_INVALID",
      `"template" expected the template that was exported (hash ${ex.templateHash.slice(0, 12)}…)`,
      {
        field: "template",
      },
    );
  const catalog = new DatasetCatalog();
  const rules = new Map<string, AnalysisRule>();
  for (const [key, d] of Object.entries(o.datasets)) {
    const [owner, name] = key.split("/") as [string, string];
    catalog.upload(name, owner, aq().from(d.rows), d.schema);
    rules.set(key, parseAnalysisRule(d.rule));
  }
  const ctx = roomContext(catalog, rules);
  const checked = checkTemplate(t, ctx);
  const params = validateParams(t, o.params);
  const tables: Record<string, Table> = {};
  for (const i of [t.base, ...(t.events ? [t.events] : [])]) tables[`${i.owner}/${i.dataset}`] = ctx.dataset(i.owner, i.dataset).table;
  const runner = new ExportRunner();
  const proofs: ExportProof["proofs"] = {};
  try {
    for (const target of ex.targets) {
      const eq = await proveEquivalent(runner, target.sql, t, params, ctx, checked, tables);
      proofs[target.target] = {
        equal: eq.equal,
        rows: eq.lab.rows.length,
        suppressed: eq.lab.suppressed.length,
        difference: eq.difference,
        shims: eq.shims,
      };
    }
  } finally {
    runner.close();
  }
  const out: ExportProof = { kind: "exportProof", templateHash: t.hash, proofs, allEqual: Object.values(proofs).every((p) => p.equal) };
  return withMimeBundle(out, (p) =>
    exportPayload(
      ex,
      Object.fromEntries(
        Object.entries(p.proofs).map(([k, v]) => [k, { equal: v.equal, rows: v.rows, suppressed: v.suppressed, difference: v.difference }]),
      ) as Partial<Record<Target, { equal: boolean; rows: number; suppressed: number; difference: string | null }>>,
    ),
  );
}
