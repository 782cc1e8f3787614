/**
 * DuckDB engine (@duckdb/node-api, embedded, in-memory) for data that outgrows arquero.
 *
 * The plan is compiled to one SQL statement. Identifiers in the SQL are column names that
 * passed the `[A-Za-z_][A-Za-z0-9_]*` check and are double-quoted; every user value
 * (parameters and literals) is a bound `?` parameter — never concatenated into SQL text.
 * Only the columns a plan reads are loaded (data minimisation, and less to copy), once per
 * arquero table object and column set (cached per engine), through the
 * columnar appender. Semantics are those documented in engine.ts; a property test checks
 * both engines return identical exact aggregates. The SQL is the dialect family that
 * Spark SQL / Trino speak (window `row_number`, `least/greatest`), so a user outgrowing one
 * machine recognises it.
 */
import type * as DuckDb from "@duckdb/node-api";
import type { DuckDBConnection, DuckDBInstance, DuckDBValue } from "@duckdb/node-api";
import { CleanRoomError } from "../errors.js";
import type { Table } from "./dataset.js";
import { columnArray, sortGroups, tableFor, type ExactAggregates, type GroupAggregate, type QueryEngine } from "./engine.js";
import { fileRefOf, type FileRef } from "./file-ref.js";
import { openSealedAnonymous, privateDir, removePrivateDir, type AnonymousCopy } from "./file-seal.js";
import type { Plan, PlanFilter } from "./plan.js";

let duckMod: typeof DuckDb | undefined;
/**
 * @duckdb/node-api, loaded on first use (its native binding costs ~0.35 s at kernel start otherwise).
 * Make instances with {@link privateDuck} (a private spill directory), not `DuckDBInstance.create`.
 * @example const { DuckDBValue } = duck()
 */
export function duck(): typeof DuckDb {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (duckMod ??= require("@duckdb/node-api") as typeof DuckDb);
}

/**
 * Each instance's `memory_limit`: `CLEANROOM_DUCKDB_MEMORY` (e.g. "6GB") or 4 GB by default —
 * DuckDB's own default is 80% of RAM, which let one 100M-row sort or join take ~19 GiB on a
 * 24 GiB machine before spilling (issue 18: a 100M study must run in < 8 GiB). Past the limit
 * DuckDB spills to the instance's private directory.
 */
export function duckMemoryLimit(): string {
  const v = typeof process !== "undefined" ? process.env?.CLEANROOM_DUCKDB_MEMORY : undefined;
  if (v === undefined || v === "") return "4GB";
  if (!/^[0-9]+(\.[0-9]+)?\s*(MB|GB|MiB|GiB)$/i.test(v))
    throw new CleanRoomError("INPUT_INVALID", `"CLEANROOM_DUCKDB_MEMORY" expected a size like 4GB`, {
      field: "CLEANROOM_DUCKDB_MEMORY",
      expected: "a size like 4GB",
    });
  return v;
}

/** An in-memory DuckDB instance whose spill directory is private; `close()` releases both. */
export interface PrivateDuck {
  instance: DuckDBInstance;
  /** The instance's `temp_directory`: a fresh 0700 directory (never DuckDB's default `./.tmp` in the working directory). */
  spillDir: string;
  /** Close the instance and remove its spill directory (idempotent). */
  close(): void;
}

/**
 * Every in-memory DuckDB of the library is made here: DuckDB's default spill directory for an
 * in-memory database is `.tmp` relative to the working directory, so a query larger than memory
 * would write plaintext rows next to the notebook. Here spills go to a private (0700) directory
 * outside the working directory, removed by `close()` (or at process exit).
 * @example const db = await privateDuck(); try { const conn = await db.instance.connect(); … } finally { db.close(); }
 */
export async function privateDuck(spillDir?: string): Promise<PrivateDuck> {
  const own = spillDir === undefined;
  const dir = spillDir ?? privateDir("crl-duck-spill-", false);
  let instance: DuckDBInstance;
  try {
    instance = await duck().DuckDBInstance.create(":memory:", { temp_directory: dir, memory_limit: duckMemoryLimit() });
  } catch (e) {
    if (own) removePrivateDir(dir);
    throw e;
  }
  let open = true;
  return {
    instance,
    spillDir: dir,
    close() {
      if (!open) return;
      open = false;
      instance.closeSync();
      if (own) removePrivateDir(dir);
    },
  };
}

const q = (id: string) => {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(id))
    throw new CleanRoomError("INTERNAL", "unchecked identifier reached the SQL compiler — this is a bug in cleanroom-lab");
  return `"${id}"`;
};
const OPS: Record<string, string> = { eq: "=", ne: "<>", lt: "<", le: "<=", gt: ">", ge: ">=" };

/** SQL text plus its bound values. */
export interface CompiledSql {
  sql: string;
  values: DuckDBValue[];
}

/**
 * Compile a plan to parameterised SQL over the given table names.
 *
 * @example
 * compileSql(plan, { "retailer/purchases": "t0" }).sql // WITH b AS (SELECT * FROM "t0" WHERE …) …
 */
export function compileSql(plan: Plan, names: Record<string, string>, baseAlias = "b", eventsAlias = "e"): CompiledSql {
  const values: DuckDBValue[] = [];
  const alias = (side: "base" | "events") => (side === "base" ? baseAlias : plan.events ? eventsAlias : baseAlias);
  const cond = (f: PlanFilter): string => {
    const l = `${alias(f.side)}.${q(f.column)}`;
    if ("other" in f) return `${l} ${OPS[f.op]} ${alias(f.other.side)}.${q(f.other.column)}`;
    if (f.op === "in") {
      values.push(...f.value);
      return `${l} IN (${f.value.map(() => "?").join(", ")})`;
    }
    values.push(f.value);
    return `${l} ${OPS[f.op]} ?`;
  };
  const where = (fs: PlanFilter[]) => (fs.length ? ` WHERE ${fs.map(cond).join(" AND ")}` : "");
  const baseFilters = plan.filters.filter((f) => f.side === "base" && !("other" in f && f.other.side !== "base"));
  const evFilters = plan.filters.filter((f) => !baseFilters.includes(f));
  const unit = q(plan.base.unit);
  const dims = plan.groupBy.map((g, i) => `${alias(g.side)}.${q(g.column)} AS d${i}`);
  const dimNames = plan.groupBy.map((_, i) => `d${i}`);
  const ms = plan.measures;
  const capClause = (src: string, part: string) =>
    plan.rowCap
      ? `(SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY ${part} ORDER BY ${plan.rowCap.orderBy.map(q).join(", ") || part}) ` +
        `AS __rn FROM ${src}) WHERE __rn <= ${plan.rowCap.cap | 0})`
      : `(SELECT * FROM ${src})`;
  // Project only the columns the plan reads (keeps the window/partition narrow).
  const used = (side: "base" | "events") => projectedColumns(plan, side);
  const baseCols = [...new Set([plan.base.unit, ...used("base")])];
  const ctes: string[] = [
    `${baseAlias} AS (SELECT ${baseCols.map((c) => `${baseAlias}.${q(c)}`).join(", ")} ` +
      `FROM ${q(names[plan.base.table]!)} AS ${baseAlias}${where(baseFilters)})`,
  ];
  const perUnitSums = ms
    .map((m, i) => (m.column && !(plan.events && m.column.side === "base") ? `, sum(CAST(${q(m.column.column)} AS HUGEINT)) AS s${i}` : ""))
    .join("");
  let cellSql: string;
  if (plan.events) {
    ctes.push(
      `ev AS (SELECT ${used("events")
        .map((c) => `${eventsAlias}.${q(c)}, `)
        .join("")}${baseAlias}.${unit} AS __u FROM ${q(names[plan.events.table]!)} AS ${eventsAlias} ` +
        `JOIN ${baseAlias} ON ${eventsAlias}.${q(plan.events.joinOn)} = ${baseAlias}.${unit}${where(evFilters)})`,
      `pu AS (SELECT __u, count(*) AS __n${perUnitSums} FROM ${capClause("ev", "__u")} GROUP BY __u)`,
    );
    const cols = ms
      .map((m, i) =>
        m.column
          ? m.column.side === "base"
            ? `, CAST(${baseAlias}.${q(m.column.column)} AS HUGEINT) AS s${i}`
            : `, coalesce(pu.s${i}, 0) AS s${i}`
          : "",
      )
      .join("");
    cellSql =
      `SELECT ${baseAlias}.${unit} AS __u${dims.map((d) => `, ${d}`).join("")}, coalesce(pu.__n, 0) AS __n${cols} ` +
      `FROM ${baseAlias} LEFT JOIN pu ON pu.__u = ${baseAlias}.${unit}${plan.events.join === "inner" ? " WHERE pu.__n > 0" : ""}`;
  } else {
    ctes.push(`bc AS ${capClause(baseAlias, unit)}`);
    const gdims = plan.groupBy.map((g, i) => `${q(g.column)} AS d${i}`);
    cellSql =
      `SELECT ${unit} AS __u${gdims.map((d) => `, ${d}`).join("")}, count(*) AS __n${perUnitSums} ` +
      `FROM bc GROUP BY ${[unit, ...plan.groupBy.map((g) => q(g.column))].join(", ")}`;
  }
  ctes.push(`cell AS (${cellSql})`);
  const aggs = ms.map((m, i) => {
    // exact: HUGEINT throughout (the declared bounds keep every sum in range, see aggregates.ts)
    if (m.kind === "count") return `sum(CAST(__n AS HUGEINT)) AS m${i}`;
    if (m.kind === "countSquares") return `sum(CAST(__n AS HUGEINT) * __n) AS m${i}`;
    if (m.kind === "unitsWithRows") return `sum(CAST(CASE WHEN __n > 0 THEN 1 ELSE 0 END AS HUGEINT)) AS m${i}`;
    const c = `least(greatest(s${i}, CAST(${BigInt(m.lo!)} AS HUGEINT)), CAST(${BigInt(m.hi!)} AS HUGEINT))`;
    return m.kind === "sumSquares" ? `sum(${c} * ${c}) AS m${i}` : `sum(${c}) AS m${i}`;
  });
  const select = [...dimNames, "count(*) AS units", ...aggs, ...(plan.withUnits ? ["list(CAST(__u AS VARCHAR)) AS unit_ids"] : [])];
  const sql = `WITH ${ctes.join(",\n")}\nSELECT ${select.join(", ")} FROM cell${dimNames.length ? ` GROUP BY ${dimNames.join(", ")}` : ""} HAVING count(*) > 0`;
  return { sql, values };
}

/**
 * The columns of one side a compiled query projects before its window and joins: column-vs-column
 * filter operands, dimensions, measures and the row cap's order (scalar filters are applied in the
 * WHERE clause over the source). Shared by the DuckDB engine and the export's SQL (export/sql.ts).
 */
export function projectedColumns(plan: Plan, side: "base" | "events"): string[] {
  const cols = new Set<string>();
  const add = (c?: { side: string; column: string }) => {
    if (c && (c.side === side || (!plan.events && side === "base"))) cols.add(c.column);
  };
  plan.filters.forEach((f) => {
    if ("other" in f) {
      add(f);
      add(f.other);
    }
  });
  plan.groupBy.forEach(add);
  plan.measures.forEach((m) => add(m.column));
  if (side === (plan.events ? "events" : "base")) plan.rowCap?.orderBy.forEach((c) => cols.add(c));
  return [...cols];
}

/** The columns of each input a plan reads (unit/join columns, filters, dimensions, measures, order). */
export function planColumns(plan: Plan): { base: string[]; events: string[] } {
  const base = new Set([plan.base.unit]);
  const events = new Set(plan.events ? [plan.events.joinOn] : []);
  const add = (c: { side: "base" | "events"; column: string }) => (c.side === "base" || !plan.events ? base : events).add(c.column);
  for (const f of plan.filters) {
    add(f);
    if ("other" in f) add(f.other);
  }
  plan.groupBy.forEach(add);
  for (const m of plan.measures) if (m.column) add(m.column);
  for (const c of plan.rowCap?.orderBy ?? []) (plan.events ? events : base).add(c);
  return { base: [...base].sort(), events: [...events].sort() };
}

const num = (v: unknown): number => (typeof v === "bigint" ? Number(v) : v === null || v === undefined ? 0 : Number(v));
/** An exact aggregate as DuckDB returns it (HUGEINT → bigint). */
const exactOf = (v: unknown): bigint => (typeof v === "bigint" ? v : v === null || v === undefined ? 0n : BigInt(v as number));

/** Embedded DuckDB engine; `close()` when done. */
export class DuckDbEngine implements QueryEngine {
  readonly name = "duckdb";
  private conn: Promise<DuckDBConnection> | null = null;
  private instance: PrivateDuck | null = null;
  private readonly loaded = new WeakMap<Table, { name: string; columns: Set<string> }[]>();
  private counter = 0;
  /** Decrypted file-backed datasets: sealed path → its nameless plaintext copy. */
  private readonly opened = new Map<string, Promise<AnonymousCopy>>();

  /**
   * @param opts.connection an existing DuckDB connection to use (benchmarks compare against
   *   hand-written SQL on the same connection); by default a private in-memory database.
   * @example const engine = new DuckDbEngine();
   */
  constructor(opts: { connection?: DuckDBConnection } = {}) {
    if (opts.connection) this.conn = Promise.resolve(opts.connection);
  }

  private connection(): Promise<DuckDBConnection> {
    if (!this.conn)
      this.conn = (async () => {
        this.instance = await privateDuck();
        return this.instance.instance.connect();
      })();
    return this.conn;
  }

  /**
   * Load (once) an arquero table — or just `columns` of it — into DuckDB and return its SQL
   * table name. A later request for columns already loaded reuses the same table.
   * @example const name = await engine.register(ds.table);
   */
  async register(table: Table, columns?: readonly string[]): Promise<string> {
    const want = columns ?? table.columnNames();
    const versions = this.loaded.get(table) ?? [];
    const hit = versions.find((v) => want.every((c) => v.columns.has(c)));
    if (hit) return hit.name;
    const conn = await this.connection();
    const name = `t${this.counter++}`;
    const cols = [...new Set(want)];
    for (const c of cols)
      if (!table.columnNames().includes(c))
        throw new CleanRoomError("ENGINE_ERROR", `"columns" expected columns of the table, got an unknown column`, { field: "columns" });
    const file = fileRefOf(table);
    if (file) {
      // file-backed: a view over the Parquet itself (decrypted once per engine), no appender copy
      const plain = (await this.openFile(file)).path;
      await conn.run(`CREATE VIEW ${q(name)} AS SELECT ${cols.map(q).join(", ")} FROM read_parquet('${plain.replaceAll("'", "''")}')`);
      versions.push({ name, columns: new Set(cols) });
      this.loaded.set(table, versions);
      return name;
    }
    const arrays = cols.map((c) => columnArray(table, c));
    const n = table.numRows();
    const isNum = arrays.map((a) => {
      if (ArrayBuffer.isView(a)) return true;
      for (let i = 0; i < a.length; i++) if (a[i] !== null && a[i] !== undefined) return typeof a[i] === "number";
      return false;
    });
    await conn.run(`CREATE TABLE ${q(name)} (${cols.map((c, i) => `${q(c)} ${isNum[i] ? "DOUBLE" : "VARCHAR"}`).join(", ")})`);
    const appender = await conn.createAppender(name);
    const { DOUBLE, VARCHAR, DuckDBDataChunk } = duck();
    const types = isNum.map((b) => (b ? DOUBLE : VARCHAR));
    const CH = 2048;
    for (let off = 0; off < n; off += CH) {
      const len = Math.min(CH, n - off);
      const chunk = DuckDBDataChunk.create(types, len);
      arrays.forEach((a, ci) => {
        const slice: DuckDBValue[] = new Array(len);
        for (let i = 0; i < len; i++) {
          const v = a[off + i];
          slice[i] = v === undefined ? null : isNum[ci] ? (v as number) : String(v);
        }
        chunk.setColumnValues(ci, slice);
      });
      appender.appendDataChunk(chunk);
    }
    appender.closeSync();
    versions.push({ name, columns: new Set(cols) });
    this.loaded.set(table, versions);
    return name;
  }

  private readonly unique = new WeakMap<Table, Map<string, boolean>>();

  /** Is `column` unique in the whole table? Cached (tables are immutable); if so, it is unique after any filter. */
  private async uniqueOverall(conn: DuckDBConnection, table: Table, name: string, column: string): Promise<boolean> {
    let m = this.unique.get(table);
    if (!m) this.unique.set(table, (m = new Map()));
    const known = m.get(column) ?? (fileRefOf(table)?.unit === column ? fileRefOf(table)!.uniqueUnit : undefined);
    if (known !== undefined) return known;
    const r = (await conn.runAndReadAll(`SELECT count(*) - count(DISTINCT ${q(column)}) AS dup FROM ${q(name)}`)).getRowObjects()[0]!;
    const ok = num(r["dup"]) === 0;
    m.set(column, ok);
    return ok;
  }

  async execute(plan: Plan, tables: Record<string, Table>): Promise<ExactAggregates> {
    const conn = await this.connection();
    const need = planColumns(plan);
    const names: Record<string, string> = { [plan.base.table]: await this.register(tableFor(tables, plan.base.table), need.base) };
    if (plan.events) names[plan.events.table] = await this.register(tableFor(tables, plan.events.table), need.events);
    try {
      if (plan.events && !(await this.uniqueOverall(conn, tableFor(tables, plan.base.table), names[plan.base.table]!, plan.base.unit))) {
        const base = compileSql(
          { ...plan, measures: [], groupBy: [], events: undefined, withUnits: false, rowCap: undefined } as Plan,
          names,
        );
        const check = base.sql.replace(/\nSELECT[\s\S]*$/, `\nSELECT count(*) - count(DISTINCT ${q(plan.base.unit)}) AS dup FROM b`);
        const dup = (await conn.runAndReadAll(check, base.values)).getRowObjects()[0]!["dup"];
        if (num(dup) !== 0)
          throw new CleanRoomError("DATASET_INVALID", "the base table of a join must have one row per privacy unit after filters", {
            field: plan.base.unit,
          });
      }
      const { sql, values } = compileSql(plan, names);
      const rows = (await conn.runAndReadAll(sql, values)).getRowObjects();
      const groups: GroupAggregate[] = rows.map((r) => {
        const g: GroupAggregate = {
          key: plan.groupBy.map((_, i) => {
            const v = r[`d${i}`];
            return v === null || v === undefined ? null : typeof v === "string" ? v : num(v);
          }),
          units: num(r["units"]),
          values: Object.fromEntries(plan.measures.map((m, i) => [m.name, exactOf(r[`m${i}`])])),
        };
        if (plan.withUnits) {
          const list = r["unit_ids"] as { items: unknown[] } | null;
          g.unitIds = (list?.items ?? [])
            .map((x) => String(x))
            .map((s) => (/^-?\d+\.0$/.test(s) ? s.slice(0, -2) : s))
            .sort();
        }
        return g;
      });
      return { dimensions: plan.groupBy.map((g) => g.as), measures: plan.measures.map((m) => m.name), groups: sortGroups(groups) };
    } catch (e) {
      if (e instanceof CleanRoomError) throw e;
      throw new CleanRoomError("ENGINE_ERROR", `duckdb failed: ${(e as Error).message.split("\n")[0]}`, {});
    }
  }

  /**
   * The plaintext Parquet of a file-backed dataset: decrypted once per engine into a file with
   * no name (RAM-backed, freed by `close()` or when the process ends, even by kill -9).
   * DuckDB 1.5.6 cannot write encrypted Parquet without OpenSSL (see file-seal.ts), so it
   * cannot read ours directly either; what plain mode exposes to the session is unchanged.
   */
  private openFile(file: FileRef): Promise<AnonymousCopy> {
    let p = this.opened.get(file.file);
    if (!p) {
      p = openSealedAnonymous(file.file, file.key);
      p.catch(() => this.opened.delete(file.file));
      this.opened.set(file.file, p);
    }
    return p;
  }

  /** Release the embedded database (and remove decrypted files). */
  close(): void {
    this.instance?.close();
    this.instance = null;
    this.conn = null;
    for (const p of this.opened.values()) void p.then((c) => c.close()).catch(() => undefined);
    this.opened.clear();
  }
}
