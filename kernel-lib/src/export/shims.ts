/**
 * Dialect shims: the exported SQL, parameters bound, made runnable on DuckDB — and nothing else.
 * Every rewrite is listed in `SHIMS` (shown with each export) and is a textual substitution of
 * a construct the exporter itself wrote; the query's logic (CTEs, joins, window, clamps, group
 * by, the lab's threshold) runs as exported. What a shim removes is the target's own control:
 * BigQuery's threshold/DP clauses and per-group contribution bounds (the SQL already clamps to
 * the same bounds, so removing them changes nothing without noise).
 */
import { CleanRoomError } from "../errors.js";
import type { ParamValues } from "../cleanroom/template.js";
import type { ExportedSql, Target } from "./sql.js";

/** The shims per target, in the order they are applied. */
export const SHIMS: Record<Target, readonly string[]> = {
  aws: [
    "table names: the configured table association `name` → the DuckDB table the lab loaded",
    'identifiers: `backticks` (Spark SQL) → "double quotes"',
    "parameters: `:name` (and list slots `:name_1 … :name_n`) → positional `?` bound to the same values",
    "types: DECIMAL(38,0) kept (DuckDB has it)",
  ],
  bigquery: [
    "table names: `clean_room.<dataset>_view` → the DuckDB table the lab loaded",
    'identifiers: `backticks` → "double quotes"',
    "parameters: `@name` → `?`; `IN UNNEST(@list)` → `IN (?, …, ?)` one per bound item",
    "`WITH AGGREGATION_THRESHOLD OPTIONS(…)` removed (the exported final WHERE applies the same minimum on the same distinct-unit count)",
    "`WITH DIFFERENTIAL_PRIVACY OPTIONS(…)` and `contribution_bounds_per_group => (lo, hi)` removed: no noise (the SQL clamps to the same bounds)",
    "types: BIGNUMERIC → DECIMAL(38,0), FLOAT64 → DOUBLE",
  ],
  snowflake: [
    "Jinja: `identifier({{ source_table[0] }})` / `identifier({{ my_table[0] }})` → the DuckDB tables the lab loaded",
    "Jinja (JinjaSQL semantics): `{{ name }}` → `?` bound; `{{ name | inclause }}` → `(?, …, ?)` one per bound item",
    "types: NUMBER(38,0) → DECIMAL(38,0)",
  ],
};

/** Bound DuckDB SQL. */
export interface ShimmedSql {
  sql: string;
  values: (string | number)[];
}

function fail(m: string): never {
  throw new CleanRoomError("INTERNAL", `${m} — this is a bug in cleanroom-lab's exporter`);
}

/**
 * Apply the target's shims and bind `params` (already validated against the template).
 *
 * @example
 * toDuckDb(exportSql(t, "aws", ctx), { startDay: 0 }, { "adv/exposures": "t0", "shop/purchases": "t1" })
 */
export function toDuckDb(e: ExportedSql, params: ParamValues, tables: Record<string, string>): ShimmedSql {
  let sql = e.sql;
  for (const [key, ref] of Object.entries(e.tables)) {
    const name = tables[key] ?? fail(`no DuckDB table for ${key}`);
    sql = sql.split(ref).join(`"${name}"`);
  }
  const values: (string | number)[] = [];
  const scalar = (name: string): string | number => {
    const v = params[name];
    if (v === undefined || Array.isArray(v)) fail(`parameter ${name} is not a bound scalar`);
    return v;
  };
  const list = (name: string): string[] => {
    const v = params[name];
    if (!Array.isArray(v)) fail(`parameter ${name} is not a bound list`);
    return v;
  };
  const listSql = (name: string) => {
    const items = list(name);
    values.push(...items);
    return `(${items.map(() => "?").join(", ")})`;
  };
  const lists = new Set(e.params.filter((p) => p.list).map((p) => p.name));
  if (e.target === "aws") {
    sql = sql.replace(/`([A-Za-z_][A-Za-z0-9_]*)`/g, '"$1"');
    sql = sql.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_, id: string) => {
      const m = /^(.*)_(\d+)$/.exec(id);
      if (m && lists.has(m[1]!)) {
        const items = list(m[1]!);
        values.push(items[Number(m[2]) - 1] ?? items[0]!);
      } else values.push(scalar(id));
      return "?";
    });
  } else if (e.target === "bigquery") {
    sql = sql.replace(/WITH (AGGREGATION_THRESHOLD|DIFFERENTIAL_PRIVACY) OPTIONS\([^()]*\) /g, "");
    sql = sql.replace(/, contribution_bounds_per_group => \(-?\d+, -?\d+\)/g, "");
    sql = sql.replace(/`([A-Za-z_][A-Za-z0-9_]*)`/g, '"$1"');
    sql = sql.replace(/BIGNUMERIC/g, "DECIMAL(38,0)").replace(/FLOAT64/g, "DOUBLE");
    sql = sql.replace(/UNNEST\(@([A-Za-z_][A-Za-z0-9_]*)\)|@([A-Za-z_][A-Za-z0-9_]*)/g, (_, l?: string, s?: string) => {
      if (l) return listSql(l);
      values.push(scalar(s!));
      return "?";
    });
  } else {
    sql = sql.replace(/NUMBER\(38,0\)/g, "DECIMAL(38,0)");
    sql = sql.replace(/\{\{ ([A-Za-z_][A-Za-z0-9_]*)( \| inclause)? \}\}/g, (_, id: string, inc?: string) => {
      if (inc) return listSql(id);
      values.push(scalar(id));
      return "?";
    });
  }
  if (/\{\{|\{%|`|@[A-Za-z_]|WITH (AGGREGATION_THRESHOLD|DIFFERENTIAL_PRIVACY)/.test(sql)) fail("a target construct survived the shims");
  return { sql, values };
}

/** The same SQL with its final threshold `WHERE` relaxed to "any unit" (to list the groups the threshold drops). */
export function withoutGate(s: ShimmedSql): ShimmedSql {
  const i = s.sql.lastIndexOf("\nWHERE crl_units >= ");
  if (i < 0) fail("the exported SQL has no threshold clause");
  return { sql: `${s.sql.slice(0, i)}\nWHERE crl_units > 0`, values: s.values };
}
