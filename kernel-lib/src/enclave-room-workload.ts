/**
 * The code that runs INSIDE the lab's enclave for an enclave-backed clean-room query, and the
 * canonical image description both the operator (to launch) and each data owner (to compute
 * the measurement it pins, independently of what the operator launches) derive from it.
 *
 * The workload receives the decrypted Arrow IPC bytes of every input, and as `params` the
 * template JSON, its parameter values and the catalog metadata (schemas, rules, fingerprints)
 * the operator planned with. It re-checks everything it can inside: the template's canonical
 * hash equals the measured/attested `templateHash`, each decrypted table matches the
 * fingerprint the budget was charged against, the template passes the owners' rules; then it
 * compiles the plan itself (the operator's plan is not trusted) and runs the same release
 * pipeline as the plain path (contribution bounds → noise from the enclave's own Rng →
 * thresholds). Only the released `QueryResult` leaves.
 *
 * Measured: this file's `enclaveRoomWorkload` source and the dependency functions listed in
 * `ENCLAVE_DEPENDENCIES` (by source text, PCR2); the engine name + version, the release
 * config and the data owners' analysis rules per input (PCR1); the approved template hashes
 * (PCR2). The rules the workload enforces are the measured ones — an operator that edits the
 * catalog's rules (e.g. lowers a threshold) launches an image no owner pinned. Not measured: library code those
 * functions call (covered by the engine version only — see enclave/measurement.ts).
 */
import { CleanRoomError, invalid } from "./errors.js";
import type { EnclaveWorkload, WorkloadInput } from "./enclave/enclave.js";
import type { EnclaveImage, JsonValue } from "./enclave/measurement.js";
import { deserializeTable } from "./cleanroom/serialize.js";
import { checkTemplate, compilePlan, type PlanContext } from "./cleanroom/plan.js";
import { parseTemplate, templateCost, templateHash, validateParams } from "./cleanroom/template.js";
import { executeQuery } from "./cleanroom/query.js";
import { releaseResult } from "./cleanroom/release.js";
import { complementarySuppression, recoverSuppressed } from "./cleanroom/suppression.js";
import { fingerprintTable, type DatasetSchema, type Table } from "./cleanroom/dataset.js";
import { ArqueroEngine } from "./cleanroom/engine.js";
import type { AnalysisRule } from "./cleanroom/rules.js";

/** Catalog metadata of one input, as planned by the operator (no values). */
export interface EnclaveInputMeta {
  owner: string;
  name: string;
  schema: DatasetSchema;
  fingerprint: string;
  rule: AnalysisRule | null;
}

/** What the operator passes as `params` to the enclave run. */
export interface EnclaveQueryParams {
  template: JsonValue;
  params: JsonValue;
  inputs: { [id: string]: EnclaveInputMeta };
}

/**
 * Run one approved template on decrypted inputs; `echoRows` > 0 leaks raw rows (the
 * one-byte-tampered variant) — which is exactly what a changed measurement must stop.
 *
 * @example
 * await runInsideEnclave(workloadInput, 0) // → released QueryResult as JSON
 */
export async function runInsideEnclave(w: WorkloadInput, echoRows: number): Promise<JsonValue> {
  const p = w.params as unknown as EnclaveQueryParams;
  if (typeof p !== "object" || p === null || typeof p.inputs !== "object" || p.inputs === null)
    invalid("params", "{ template, params, inputs }", p);
  const template = parseTemplate(p.template);
  if (templateHash(template) !== w.templateHash)
    throw new CleanRoomError("QUERY_NOT_APPROVED", `"params.template" expected the template whose hash was attested, got another`, {
      field: "params.template",
    });
  const measuredRules = (w.config.rules ?? {}) as unknown as { [id: string]: AnalysisRule | null };
  const tables: Record<string, Table> = {};
  for (const [id, meta] of Object.entries(p.inputs)) {
    const bytes = w.inputs[id];
    if (!bytes) invalid(`inputs.${id}`, "a decrypted input", undefined, "KEY_RELEASE_DENIED");
    const table = deserializeTable(bytes);
    if (fingerprintTable(table, meta.schema) !== meta.fingerprint)
      throw new CleanRoomError(
        "DATASET_INVALID",
        `"inputs.${id}" decrypted data does not match the fingerprint the query was planned and charged for`,
        { field: `inputs.${id}` },
      );
    tables[id] = table;
  }
  const ctx: PlanContext = {
    dataset: (owner, name) => {
      const id = `${owner}/${name}`;
      const meta = p.inputs[id];
      const table = tables[id];
      if (!meta || !table)
        throw new CleanRoomError("NOT_FOUND", `"dataset" expected an input of this run, got ${id}`, { field: "dataset" });
      return { name: meta.name, owner: meta.owner, schema: meta.schema, rows: table.numRows(), fingerprint: meta.fingerprint, table };
    },
    // The owners' analysis rules come from the MEASURED config (each owner checked its own
    // entry before pinning the image), never from the operator-supplied catalog in `params`.
    rule: (owner, name) => measuredRules[`${owner}/${name}`] ?? undefined,
  };
  const checked = checkTemplate(template, ctx);
  if (template.differenceCheck)
    throw new CleanRoomError(
      "STATE_INVALID",
      `"template.differenceCheck" is not supported inside the enclave (the difference history lives outside it)`,
      { field: "template.differenceCheck" },
    );
  const params = validateParams(template, p.params);
  const plan = compilePlan(template, params, ctx, { withUnits: false });
  const fingerprints = Object.fromEntries(Object.entries(p.inputs).map(([id, m]) => [id, m.fingerprint]));
  // DuckDB's native module is loaded only when the measured config asks for it (an enclave process starts faster)
  const engine = w.config.engine === "duckdb" ? new (await import("./cleanroom/duckdb.js")).DuckDbEngine() : new ArqueroEngine();
  const result = await executeQuery(
    { template, templateHash: w.templateHash, checked, params, plan, cost: templateCost(template, params), fingerprints, tables },
    { engine, rng: w.rng },
  );
  const out = JSON.parse(JSON.stringify(result)) as { [k: string]: JsonValue };
  if (echoRows > 0) out.rawRows = Object.values(tables)[0]!.objects({ limit: echoRows }) as unknown as JsonValue;
  return out;
}

/** The approved enclave workload (its source text is measured). */
export const enclaveRoomWorkload: EnclaveWorkload = (w) => runInsideEnclave(w, 0);
/** The same workload with ONE byte changed: it now echoes raw rows of the first input. */
export const tamperedEnclaveRoomWorkload: EnclaveWorkload = (w) => runInsideEnclave(w, 5);

/** Functions the workload calls, measured by source text. */
export const ENCLAVE_DEPENDENCIES = {
  runInsideEnclave,
  executeQuery,
  releaseResult,
  complementarySuppression,
  recoverSuppressed,
  deserializeTable,
  checkTemplate,
  compilePlan,
  fingerprintTable,
} as const;

/** Engine name + version measured into PCR1. @example enclaveEngine("arquero") // { name: "arquero", version: "arquero 8.0.3" } */
export function enclaveEngine(engineName: string): { name: string; version: string } {
  return engineName === "duckdb"
    ? { name: "duckdb", version: "@duckdb/node-api 1.5.6-r.1" }
    : { name: "arquero", version: "arquero 8.0.3" };
}

/**
 * The canonical image of the lab's enclave for a set of approved template hashes and the
 * owners' analysis rules (dataset key → rule): what the operator launches and what each owner
 * measures on its own — with ITS OWN rule for its dataset — to pin its key policy.
 *
 * @example
 * measureImage(enclaveRoomImage("arquero", lab.templates.approvedHashes())).imageSha384
 */
export function enclaveRoomImage(
  engineName: string,
  approvedTemplateHashes: string[],
  rules: { [datasetKey: string]: AnalysisRule | null } = {},
  code: PublishedCode = publishedCode(),
): EnclaveImage {
  return {
    engine: enclaveEngine(engineName),
    approvedTemplateHashes,
    config: {
      engine: engineName,
      release: "cleanroom-lab/release v1 (bound → noise → threshold)",
      rules: JSON.parse(JSON.stringify(rules)) as JsonValue,
    },
    workloadCode: code.workloadCode,
    dependencies: code.dependencies,
  };
}

/** The source texts an image measures: the approved workload and its dependencies. */
export interface PublishedCode {
  workloadCode: string;
  dependencies: { [name: string]: string };
}

/**
 * The source texts of the approved workload and its dependencies, as `mod` (this module, or
 * another build of it — e.g. the compiled one an enclave process runs) defines them.
 * @example measureImage(enclaveRoomImage("arquero", hashes, rules, publishedCode())).imageSha384
 */
export function publishedCode(
  mod: { enclaveRoomWorkload: unknown; ENCLAVE_DEPENDENCIES: { [k: string]: unknown } } = { enclaveRoomWorkload, ENCLAVE_DEPENDENCIES },
): PublishedCode {
  const src = (f: unknown) => Function.prototype.toString.call(f);
  return {
    workloadCode: src(mod.enclaveRoomWorkload),
    dependencies: Object.fromEntries(Object.entries(mod.ENCLAVE_DEPENDENCIES).map(([k, f]) => [k, src(f)])),
  };
}
