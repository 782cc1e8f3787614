/**
 * Proof that an export means the same thing: the exported SQL, shimmed (shims.ts) and with its
 * parameters bound, runs on DuckDB over the same tables, and its rows must equal the lab's
 * un-noised release exactly (same groups, same integers, same floats) and the groups its
 * threshold drops must be the groups the lab suppresses.
 *
 * The lab side is the lab's own code: the arquero engine (not DuckDB, so the two sides share no
 * SQL) and, for threshold-only templates, `releaseResult` itself with style `drop` (every target
 * drops; "remainder" and "error" are listed as differences). For noised templates the lab
 * decides on the noisy count; without noise that is the exact count, so the reference applies
 * the template's minimum to the exact distinct-unit count (no events-side count: noise mode has
 * none). Keys of a noised template's declared domain that the data lacks are not compared (the
 * lab reports them suppressed; a warehouse never sees a key that is not in its data).
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { ArqueroEngine } from "../cleanroom/engine.js";
import { DuckDbEngine, privateDuck, type PrivateDuck } from "../cleanroom/duckdb.js";
import { releasedInt, type DimValue } from "../cleanroom/aggregates.js";
import { compilePlan, type CheckedTemplate, type PlanContext } from "../cleanroom/plan.js";
import { releaseResult } from "../cleanroom/release.js";
import { seededRng } from "../rng.js";
import type { Table } from "../cleanroom/dataset.js";
import type { ParamValues, ParsedTemplate } from "../cleanroom/template.js";
import { toDuckDb, withoutGate, SHIMS } from "./shims.js";
import type { ExportedSql } from "./sql.js";

export type Row = Record<string, string | number | null>;

/** The lab's un-noised answer: released rows and suppressed keys (drop style). */
export interface LabAnswer {
  rows: Row[];
  suppressed: Record<string, DimValue>[];
}

/** The outcome of one equivalence check. */
export interface Equivalence {
  target: string;
  equal: boolean;
  lab: LabAnswer;
  exported: LabAnswer;
  shims: readonly string[];
  /** The first difference, in words, when not equal. */
  difference: string | null;
}

const keyOf = (row: Row, dims: string[]) => JSON.stringify(dims.map((d) => row[d] ?? null));
const sortRows = (rows: Row[], dims: string[]) => [...rows].sort((a, b) => (keyOf(a, dims) < keyOf(b, dims) ? -1 : 1));

/**
 * The lab's un-noised release of `t` with `params` over `tables`.
 *
 * @example const lab = await labAnswer(t, params, ctx, checked, tables);
 */
export async function labAnswer(
  t: ParsedTemplate,
  params: ParamValues,
  ctx: PlanContext,
  checked: CheckedTemplate,
  tables: Record<string, Table>,
): Promise<LabAnswer> {
  const plan = compilePlan(t, params, ctx, { withUnits: false });
  const exact = await new ArqueroEngine().execute(plan, tables);
  const dims = exact.dimensions;
  const keyObj = (key: DimValue[]) => Object.fromEntries(dims.map((d, i) => [d, key[i] ?? null]));
  if (!t.noise) {
    const released = releaseResult({
      template: { ...t, threshold: { ...t.threshold, style: "drop" }, differenceCheck: undefined },
      templateHash: t.hash,
      checked,
      exact,
      engine: "arquero",
      cost: null,
      rng: seededRng("export-proof (no noise drawn)"),
    });
    return { rows: released.rows.map((r) => ({ ...r })), suppressed: released.suppressed.rows.map((r) => r.key) };
  }
  const rows: Row[] = [];
  const suppressed: Record<string, DimValue>[] = [];
  for (const g of exact.groups) {
    if (g.units < checked.minimum) {
      suppressed.push(keyObj(g.key));
      continue;
    }
    const row: Row = keyObj(g.key) as Row;
    for (const a of t.aggregates) {
      if (a.fn === "countUnits") row[a.name] = g.units;
      else if (a.fn === "avg") row[a.name] = Number(g.values[a.name]!) / g.units;
      else row[a.name] = releasedInt(g.values[a.name]!);
    }
    rows.push(row);
  }
  return { rows, suppressed };
}

const fromDuck = (v: unknown): string | number | null => {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return releasedInt(v);
  if (typeof v === "number" || typeof v === "string") return v;
  if (typeof v === "object" && "value" in v && "scale" in v && (v as { scale: number }).scale === 0)
    return releasedInt((v as { value: bigint }).value);
  return String(v);
};

/** Runs exported SQL on one embedded DuckDB (tables loaded once per table object). `close()` when done. */
export class ExportRunner {
  private instance: PrivateDuck | null = null;
  private conn: Promise<{ conn: DuckDBConnection; engine: DuckDbEngine }> | null = null;

  private connection() {
    if (!this.conn)
      this.conn = (async () => {
        this.instance = await privateDuck();
        const conn = await this.instance.instance.connect();
        return { conn, engine: new DuckDbEngine({ connection: conn }) };
      })();
    return this.conn;
  }

  /**
   * Run `e` (shimmed, `params` bound) over `tables` (keyed "owner/dataset"): the released rows and
   * the keys its threshold drops.
   */
  async run(e: ExportedSql, params: ParamValues, tables: Record<string, Table>, dims: string[]): Promise<LabAnswer> {
    const { conn, engine } = await this.connection();
    const names: Record<string, string> = {};
    for (const key of Object.keys(e.tables)) names[key] = await engine.register(tables[key]!);
    const shimmed = toDuckDb(e, params, names);
    const read = async (s: { sql: string; values: (string | number)[] }) =>
      (await conn.runAndReadAll(s.sql, s.values)).getRowObjects().map((r) => {
        const o: Row = {};
        for (const [k, v] of Object.entries(r)) o[k] = fromDuck(v);
        return o;
      });
    const rows = (await read(shimmed)).map((r) => Object.fromEntries(e.columns.map((c) => [c, r[c] ?? null])));
    const all = await read(withoutGate(shimmed));
    const released = new Set(rows.map((r) => keyOf(r, dims)));
    const suppressed = all.filter((r) => !released.has(keyOf(r, dims))).map((r) => Object.fromEntries(dims.map((d) => [d, r[d] ?? null])));
    return { rows, suppressed: suppressed as Record<string, DimValue>[] };
  }

  close(): void {
    this.instance?.close();
    this.instance = null;
    this.conn = null;
  }
}

/**
 * Compare the lab's answer with the export's on DuckDB.
 *
 * @example const eq = await proveEquivalent(runner, exported, t, params, ctx, checked, tables); eq.equal // true
 */
export async function proveEquivalent(
  runner: ExportRunner,
  e: ExportedSql,
  t: ParsedTemplate,
  params: ParamValues,
  ctx: PlanContext,
  checked: CheckedTemplate,
  tables: Record<string, Table>,
): Promise<Equivalence> {
  const dims = t.groupBy.map((g) => g.split(".")[1]!);
  const lab = await labAnswer(t, params, ctx, checked, tables);
  const exp = await runner.run(e, params, tables, dims);
  const norm = (a: LabAnswer): LabAnswer => ({
    rows: sortRows(a.rows, dims),
    suppressed: sortRows(a.suppressed as Row[], dims) as Record<string, DimValue>[],
  });
  const l = norm(lab);
  const x = norm(exp);
  let difference: string | null = null;
  if (l.rows.length !== x.rows.length) difference = `lab released ${l.rows.length} row(s), the export ${x.rows.length}`;
  else {
    const i = l.rows.findIndex((r, k) => JSON.stringify(r) !== JSON.stringify(x.rows[k]));
    if (i >= 0) difference = `row ${i} differs: lab ${JSON.stringify(l.rows[i])}, export ${JSON.stringify(x.rows[i])}`;
  }
  if (!difference && JSON.stringify(l.suppressed) !== JSON.stringify(x.suppressed))
    difference = `suppressed groups differ: lab ${JSON.stringify(l.suppressed)}, export ${JSON.stringify(x.suppressed)}`;
  return { target: e.target, equal: difference === null, lab: l, exported: x, shims: SHIMS[e.target], difference };
}
