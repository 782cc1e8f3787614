/**
 * One approved template → one SQL statement in a target's dialect (AWS Clean Rooms Spark SQL,
 * BigQuery GoogleSQL, Snowflake SQL with JinjaSQL parameters), computing exactly what the lab
 * computes: the same per-unit cells as the engines (cleanroom/duckdb.ts `compileSql`, whose
 * structure this mirrors), the same row cap and per-unit clamp, and the lab's threshold as an
 * explicit final `WHERE` on the distinct-unit count (plus, in exact join mode, on the units with
 * events, as the release does). The target's own controls (BigQuery's `WITH AGGREGATION_THRESHOLD`
 * or `WITH DIFFERENTIAL_PRIVACY`, AWS's DP rule, Snowflake's policies) come on top.
 *
 * Run-time parameters stay parameters, in the target's syntax (AWS `:name`, BigQuery `@name`,
 * Snowflake `{{ name }}`); the template's own literals are part of the approved design and are
 * written into the SQL, only when they are plain (letters, digits, ` _.+-/`), so no quoting rule
 * of any dialect is relied on. Identifiers passed the template's `[A-Za-z_][A-Za-z0-9_]*` check
 * and are quoted (backticks for Spark/BigQuery, double quotes for Snowflake).
 *
 * Internal column names start with `crl_`; the final SELECT renames them to the template's
 * dimension and aggregate names.
 */
import { CleanRoomError, invalid } from "../errors.js";
import { compilePlan, type Plan, type PlanContext } from "../cleanroom/plan.js";
import { projectedColumns } from "../cleanroom/duckdb.js";
import type { ParamValues, ParsedTemplate, Template } from "../cleanroom/template.js";
import { noiseQuantities, templateNoise } from "../cleanroom/template.js";

export type Target = "aws" | "bigquery" | "snowflake";
export const TARGETS: readonly Target[] = ["aws", "bigquery", "snowflake"] as const;

/** A run-time parameter of the exported query. */
export interface ExportParam {
  name: string;
  type: "int" | "string";
  /** An `enumList` parameter (an `IN` list). */
  list: boolean;
  /** AWS only: a list parameter becomes this many scalar slots `name_1 … name_n` (unused slots repeat the first value). */
  slots?: number;
  /** Allowed values (enum, enumList) or range (int), from the template. */
  values?: string[];
  min?: number;
  max?: number;
}

/** The exported statement and what it needs to run. */
export interface ExportedSql {
  target: Target;
  sql: string;
  params: ExportParam[];
  /** Table placeholder per input (`"owner/dataset"` → how the SQL names it). */
  tables: Record<string, string>;
  /** The lab's effective minimum (template vs owners' rules), written into the SQL. */
  minimum: number;
  /** The base table's privacy-unit column. */
  unit: string;
  /** Output columns, in order: dimensions then aggregates. */
  columns: string[];
}

/** What the exporter needs to know about the room: the base privacy unit and the effective minimum. */
export interface ExportContext {
  unit: string;
  minimum: number;
  /** BigQuery DP only: δ to state (the lab's pure-ε templates have none; BigQuery needs one). */
  delta?: number;
}

const SAFE_LITERAL = /^[A-Za-z0-9 _.+\-/]{0,200}$/;

/**
 * The plan of a template with placeholder parameter values: its structure (sides, row cap order,
 * measures) is what `compilePlan` derives from the template alone — only the base's privacy unit
 * comes from the room, so the context here answers that and nothing else.
 */
export function planShape(t: Template, unit: string): Plan {
  const params: ParamValues = {};
  for (const [name, p] of sortedParams(t)) params[name] = p.type === "int" ? p.min : p.type === "enum" ? p.values[0]! : [p.values[0]!];
  const ctx = {
    dataset: () => ({ schema: { privacyUnit: unit } }),
    rule: () => undefined,
  } as unknown as PlanContext;
  return compilePlan(t, params, ctx, { withUnits: false });
}

interface Dialect {
  q(id: string): string;
  table(side: "base" | "events", t: Template): string;
  param(name: string): string;
  listParam(name: string, slots: number): string;
  dec: string;
  double: string;
}

const ident = (id: string) => {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(id)) bug("unchecked identifier reached the exporter");
  return id;
};
function bug(m: string): never {
  throw new CleanRoomError("INTERNAL", `${m} — this is a bug in cleanroom-lab`);
}

const DIALECTS: Record<Target, Dialect> = {
  aws: {
    q: (id) => `\`${ident(id)}\``,
    // the configured table association's name in the collaboration (the lab's dataset name)
    table: (side, t) => `\`${ident(side === "base" ? t.base.dataset : t.events!.dataset)}\``,
    param: (n) => `:${ident(n)}`,
    listParam: (n, slots) => `(${Array.from({ length: slots }, (_, i) => `:${ident(n)}_${i + 1}`).join(", ")})`,
    dec: "DECIMAL(38,0)",
    double: "DOUBLE",
  },
  bigquery: {
    q: (id) => `\`${ident(id)}\``,
    // a view per input in the clean room's linked dataset (the analysis rule sits on the view)
    table: (side, t) => `\`clean_room.${ident(side === "base" ? t.base.dataset : t.events!.dataset)}_view\``,
    param: (n) => `@${ident(n)}`,
    listParam: (n) => `UNNEST(@${ident(n)})`,
    dec: "BIGNUMERIC",
    double: "FLOAT64",
  },
  snowflake: {
    q: (id) => `"${ident(id)}"`,
    // Snowflake DCR templates receive the provider's tables as source_table and the consumer's as my_table
    table: (side) => (side === "base" ? "identifier({{ source_table[0] }})" : "identifier({{ my_table[0] }})"),
    param: (n) => `{{ ${ident(n)} }}`,
    listParam: (n) => `{{ ${ident(n)} | inclause }}`,
    dec: "NUMBER(38,0)",
    double: "DOUBLE",
  },
};

const OPS: Record<string, string> = { eq: "=", ne: "<>", lt: "<", le: "<=", gt: ">", ge: ">=" };

function literal(v: string | number | string[], field: string): string {
  if (Array.isArray(v)) return `(${v.map((x) => literal(x, field)).join(", ")})`;
  if (typeof v === "number") return Number.isSafeInteger(v) ? (v < 0 ? `(${v})` : String(v)) : bug("non-integer literal");
  if (!SAFE_LITERAL.test(v))
    invalid(field, "a literal of letters, digits and ` _.+-/` to export (or make it a parameter)", v, "TEMPLATE_INVALID");
  return `'${v}'`;
}

/**
 * The lab refuses a parameter outside its declared range or values; no target checks that for
 * a template parameter, so the exported SQL does: a guard per parameter in the base's WHERE
 * (an out-of-range value selects no one, and so releases nothing). Ints: `BETWEEN min AND max`;
 * enums: `IN (values)`; lists: each AWS slot `IN (values)` (BigQuery and Snowflake lists are not
 * guarded — listed as a difference). Values that are not plain literals are not guarded.
 */
export function paramGuards(t: Template, target: Target): string[] {
  const d = DIALECTS[target];
  const safe = (vs: string[]) => vs.every((v) => SAFE_LITERAL.test(v));
  const out: string[] = [];
  for (const [name, p] of sortedParams(t)) {
    if (p.type === "int") out.push(`${d.param(name)} BETWEEN ${literal(p.min, "")} AND ${literal(p.max, "")}`);
    else if (!safe(p.values)) continue;
    else if (p.type === "enum") out.push(`${d.param(name)} IN ${literal(p.values, "")}`);
    else if (target === "aws") for (let i = 1; i <= listSlots(p); i++) out.push(`:${ident(name)}_${i} IN ${literal(p.values, "")}`);
  }
  return out;
}

/** True when every parameter of `t` is guarded in `target`'s SQL. */
export function allParamsGuarded(t: Template, target: Target): boolean {
  return Object.values(t.params).every(
    (p) => p.type === "int" || (p.values.every((v) => SAFE_LITERAL.test(v)) && (p.type === "enum" || target === "aws")),
  );
}

/** AWS list slots of an enumList parameter. */
export function listSlots(spec: { values: string[]; maxItems?: number | undefined }): number {
  return spec.maxItems ?? spec.values.length;
}

/** The template's run-time parameters as the export declares them. */
export function exportParams(t: Template, target: Target): ExportParam[] {
  return sortedParams(t).map(([name, p]) =>
    p.type === "int"
      ? { name, type: "int", list: false, min: p.min, max: p.max }
      : p.type === "enum"
        ? { name, type: "string", list: false, values: [...p.values] }
        : { name, type: "string", list: true, values: [...p.values], ...(target === "aws" ? { slots: listSlots(p) } : {}) },
  );
}

/**
 * The SQL of `t` in `target`'s dialect.
 *
 * @example
 * exportSql(t, "bigquery", { unit: "join_key", minimum: 100 }).sql // "WITH b AS (SELECT …) … WHERE crl_units >= 100"
 */
export function exportSql(t: ParsedTemplate | Template, target: Target, ctx: ExportContext): ExportedSql {
  const d = DIALECTS[target];
  const plan = planShape(t, ctx.unit);
  const q = d.q;
  const noise = templateNoise(t);
  const dpBigQuery = target === "bigquery" && noise !== null;
  const alias = (side: "base" | "events") => (side === "base" || !plan.events ? "b" : "e");
  const operand = (i: number): string => {
    const f = t.filters[i]!;
    if ("param" in f.value) {
      const spec = t.params[f.value.param]!;
      return spec.type === "enumList" ? d.listParam(f.value.param, listSlots(spec)) : d.param(f.value.param);
    }
    if ("literal" in f.value) return literal(f.value.literal, `template.filters.${i}.value.literal`);
    return "";
  };
  const cond = (i: number): string => {
    const f = plan.filters[i]!;
    const l = `${alias(f.side)}.${q(f.column)}`;
    if ("other" in f) return `${l} ${OPS[f.op]} ${alias(f.other.side)}.${q(f.other.column)}`;
    return f.op === "in" ? `${l} IN ${operand(i)}` : `${l} ${OPS[f.op]} ${operand(i)}`;
  };
  const idx = plan.filters.map((_, i) => i);
  const isBase = (i: number) => {
    const f = plan.filters[i]!;
    return f.side === "base" && !("other" in f && f.other.side !== "base");
  };
  const where = (is: number[]) => (is.length ? ` WHERE ${is.map(cond).join(" AND ")}` : "");
  const baseFilters = idx.filter(isBase);
  const evFilters = idx.filter((i) => !isBase(i));
  const unit = q(plan.base.unit);
  const ms = plan.measures;
  const used = (side: "base" | "events") => projectedColumns(plan, side);
  const capClause = (src: string, part: string) =>
    plan.rowCap
      ? `(SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY ${part} ORDER BY ` +
        `${(plan.rowCap.orderBy.length ? plan.rowCap.orderBy.map(q) : [part]).map((c) => `${c} ASC NULLS LAST`).join(", ")}) ` +
        `AS crl_rn FROM ${src}) AS crl_c WHERE crl_rn <= ${plan.rowCap.cap | 0})`
      : `(SELECT * FROM ${src})`;
  const baseCols = [...new Set([plan.base.unit, ...used("base")])];
  const guards = paramGuards(t, target).join(" AND ");
  const baseWhere = where(baseFilters) + (guards ? `${baseFilters.length ? " AND " : " WHERE "}${guards}` : "");
  const ctes: string[] = [`b AS (SELECT ${baseCols.map((c) => `b.${q(c)}`).join(", ")} FROM ${d.table("base", t)} AS b${baseWhere})`];
  const cast = (x: string) => `CAST(${x} AS ${d.dec})`;
  const perUnitSums = ms
    .map((m, i) => (m.column && !(plan.events && m.column.side === "base") ? `, SUM(${cast(q(m.column.column))}) AS crl_s${i}` : ""))
    .join("");
  const dimNames = plan.groupBy.map((_, i) => `crl_d${i}`);
  let cellSql: string;
  if (plan.events) {
    const evCols = used("events").map((c) => `e.${q(c)}, `);
    ctes.push(
      `ev AS (SELECT ${evCols.join("")}b.${unit} AS crl_u FROM ${d.table("events", t)} AS e ` +
        `JOIN b ON e.${q(plan.events.joinOn)} = b.${unit}${where(evFilters)})`,
      `pu AS (SELECT crl_u, COUNT(*) AS crl_n${perUnitSums} FROM ${capClause("ev", "crl_u")} AS crl_ev GROUP BY crl_u)`,
    );
    const dims = plan.groupBy.map((g, i) => `, b.${q(g.column)} AS crl_d${i}`).join("");
    const cols = ms
      .map((m, i) =>
        m.column
          ? m.column.side === "base"
            ? `, ${cast(`b.${q(m.column.column)}`)} AS crl_s${i}`
            : `, COALESCE(pu.crl_s${i}, ${cast("0")}) AS crl_s${i}`
          : "",
      )
      .join("");
    cellSql =
      `SELECT b.${unit} AS crl_u${dims}, COALESCE(pu.crl_n, 0) AS crl_n${cols} ` +
      `FROM b LEFT JOIN pu ON pu.crl_u = b.${unit}${plan.events.join === "inner" ? " WHERE pu.crl_n > 0" : ""}`;
  } else {
    ctes.push(`bc AS ${capClause("b", unit)}`);
    const dims = plan.groupBy.map((g, i) => `, ${q(g.column)} AS crl_d${i}`).join("");
    cellSql =
      `SELECT ${unit} AS crl_u${dims}, COUNT(*) AS crl_n${perUnitSums} ` +
      `FROM bc GROUP BY ${[unit, ...plan.groupBy.map((g) => q(g.column))].join(", ")}`;
  }
  ctes.push(`cell AS (${cellSql})`);
  // BigQuery DP: each SUM states the per-unit, per-group bounds the lab clamps to (contribution_bounds_per_group)
  const bounded = (x: string, lo: bigint, hi: bigint) =>
    dpBigQuery ? `SUM(${x}, contribution_bounds_per_group => (${lo}, ${hi}))` : `SUM(${x})`;
  const aggs = ms.map((m, i) => {
    const cap = BigInt(plan.rowCap?.cap ?? 1);
    if (m.kind === "count") return `${bounded(cast("crl_n"), 0n, cap)} AS crl_m${i}`;
    if (m.kind === "countSquares") return `${bounded(`${cast("crl_n")} * crl_n`, 0n, cap * cap)} AS crl_m${i}`;
    if (m.kind === "unitsWithRows") return `${bounded(`${cast("CASE WHEN crl_n > 0 THEN 1 ELSE 0 END")}`, 0n, 1n)} AS crl_m${i}`;
    const lo = BigInt(m.lo!);
    const hi = BigInt(m.hi!);
    const c = `LEAST(GREATEST(crl_s${i}, ${cast(String(lo))}), ${cast(String(hi))})`;
    if (m.kind === "sumSquares") {
      const mx = lo * lo > hi * hi ? lo * lo : hi * hi;
      return `${bounded(`${c} * ${c}`, 0n, mx)} AS crl_m${i}`;
    }
    return `${bounded(c, lo, hi)} AS crl_m${i}`;
  });
  const units = dpBigQuery ? "COUNT(*, contribution_bounds_per_group => (0, 1))" : "COUNT(*)";
  let clause = "";
  if (target === "bigquery" && noise) {
    clause =
      `WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = ${bigQueryEpsilon(t, ctx)}, delta = ${ctx.delta ?? DEFAULT_DELTA}, ` +
      `max_groups_contributed = ${plan.groupBy.length === 0 ? 1 : maxGroups(t)}, privacy_unit_column = crl_u) `;
  } else if (target === "bigquery") clause = `WITH AGGREGATION_THRESHOLD OPTIONS(threshold = ${ctx.minimum}, privacy_unit_column = crl_u) `;
  const inner =
    `SELECT ${clause}${[...dimNames, `${units} AS crl_units`, ...aggs].join(", ")} FROM cell` +
    (dimNames.length ? ` GROUP BY ${dimNames.join(", ")}` : "");
  const evIdx = ms.findIndex((m) => m.name.startsWith("$"));
  const outCols: string[] = [];
  const select = [
    ...plan.groupBy.map((g, i) => {
      outCols.push(g.as);
      return `crl_d${i} AS ${q(g.as)}`;
    }),
    ...t.aggregates.map((a) => {
      outCols.push(a.name);
      if (a.fn === "countUnits") return `crl_units AS ${q(a.name)}`;
      const i = ms.findIndex((m) => m.name === a.name);
      if (a.fn === "avg") return `CAST(crl_m${i} AS ${d.double}) / crl_units AS ${q(a.name)}`;
      return `crl_m${i} AS ${q(a.name)}`;
    }),
  ];
  const gate = [`crl_units >= ${ctx.minimum}`, ...(evIdx >= 0 ? [`crl_m${evIdx} >= ${ctx.minimum}`] : [])];
  const sql = `WITH ${ctes.join(",\n")}\nSELECT ${select.join(", ")}\nFROM (${inner}) AS crl_r\nWHERE ${gate.join(" AND ")}`;
  const tables: Record<string, string> = { [plan.base.table]: d.table("base", t) };
  if (plan.events) tables[plan.events.table] = d.table("events", t);
  return { target, sql, params: exportParams(t, target), tables, minimum: ctx.minimum, unit: ctx.unit, columns: outCols };
}

/** δ stated for BigQuery DP when the lab's template is pure ε (BigQuery's DP needs δ > 0 for its own group selection). */
export const DEFAULT_DELTA = 1e-7;

/** Groups one unit can reach (1 in a join: dimensions are base columns; the row cap otherwise). */
function maxGroups(t: Template): number {
  if (t.events || t.groupBy.length === 0) return 1;
  return t.contribution?.maxRowsPerUnit ?? 1;
}

/**
 * The ε of one run stated to BigQuery: the lab's total ε (pure-DP templates: quantities × ε per
 * aggregate); for a zCDP template the ε of (ρ, δ) by the standard conversion ε = ρ + 2√(ρ ln 1/δ).
 */
export function bigQueryEpsilon(t: Template, ctx: ExportContext): number {
  const n = templateNoise(t);
  if (!n) return 0;
  const quantities = noiseQuantities(t).length;
  const budget = Number(n.budget.num) / Number(n.budget.den);
  const total = quantities * budget;
  if (n.mechanism.unit === "pureDp") return round6(total);
  const delta = ctx.delta ?? DEFAULT_DELTA;
  return round6(total + 2 * Math.sqrt(total * Math.log(1 / delta)));
}
const round6 = (x: number) => Math.ceil(x * 1e6) / 1e6;

/** Parameters in name order: the canonical (hashed) form sorts keys, so the SQL must not depend on the order they were written in. */
function sortedParams(t: Template) {
  return Object.entries(t.params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
