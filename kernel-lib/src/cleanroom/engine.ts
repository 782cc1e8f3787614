/**
 * Query engines: one interface, exact (pre-noise) per-group aggregates.
 *
 * Semantics of a `Plan` (both engines implement exactly this; tests compare them):
 *  1. base rows pass the base filters; with an events table the base must then have one
 *     row per privacy unit (the population), otherwise each base row is a measured row;
 *  2. event rows pass the event filters and cross filters (e.g. purchase_day ≥
 *     first_exposure_day) and match a base unit on the join column (matched identity);
 *  3. contribution bounding: each unit keeps at most `rowCap.cap` measured rows, the first
 *     in `rowCap.orderBy` order (fbpcs caps conversions at 4 per user);
 *  4. per (unit, group) cell: count of rows, Σ of each measured column (a base column in
 *     join mode is the unit's one value), then clamped to the measure's [lo, hi];
 *     an inner join drops units without measured rows;
 *  5. per group: `units` = distinct units, and Σ over units of each measure.
 * Groups are returned sorted by key. Identifiers never leave the engine except the
 * optional `unitIds` used internally by difference checks (stripped before release).
 *
 * `ArqueroEngine` evaluates the plan over arquero column arrays with hash joins in plain
 * loops (no expression strings, so no user value is ever compiled into code).
 */
import { CleanRoomError } from "../errors.js";
import type { Table } from "./dataset.js";
import type { ColumnRef, Plan, PlanFilter } from "./plan.js";

export type DimValue = string | number | null;

/** Exact aggregates of one output group. */
export interface GroupAggregate {
  key: DimValue[];
  /** Distinct privacy units in the group. */
  units: number;
  values: Record<string, number>;
  /** Sorted unit ids (only when `plan.withUnits`); internal, never released. */
  unitIds?: string[];
}

/** What an engine returns: exact, pre-noise, sorted by key. */
export interface ExactAggregates {
  dimensions: string[];
  measures: string[];
  groups: GroupAggregate[];
}

/** One interface for every engine. */
export interface QueryEngine {
  readonly name: string;
  /**
   * Execute a compiled plan over the room's tables (keyed `"owner/dataset"`).
   * @example const exact = await new ArqueroEngine().execute(plan, { "retailer/purchases": ds.table });
   */
  execute(plan: Plan, tables: Record<string, Table>): Promise<ExactAggregates>;
}

/** Compare two dimension/order values: numbers numerically, strings by code unit. */
export function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a) < String(b) ? -1 : 1;
}

/** Sort groups by key (shared by both engines so the order is identical). */
export function sortGroups(groups: GroupAggregate[]): GroupAggregate[] {
  return groups.sort((x, y) => {
    for (let i = 0; i < x.key.length; i++) {
      const c = compareValues(x.key[i], y.key[i]);
      if (c !== 0) return c;
    }
    return 0;
  });
}

export function tableFor(tables: Record<string, Table>, key: string): Table {
  const t = tables[key];
  if (!t) throw new CleanRoomError("ENGINE_ERROR", `"tables.${key}" expected the table of a plan input, got none`, { field: `tables.${key}` });
  return t;
}

/** Check every released number is an exact safe integer (sums must stay below 2^53). */
export function checkExact(groups: GroupAggregate[]): void {
  for (const g of groups)
    for (const [name, v] of Object.entries(g.values))
      if (!Number.isSafeInteger(v)) throw new CleanRoomError("ENGINE_ERROR", `aggregate "${name}" exceeds the exact integer range (2^53); narrow its bounds`, { field: name });
}

export const clamp = (x: number, lo: number, hi: number) => (x < lo ? lo : x > hi ? hi : x);

const cmp = (op: string, a: unknown, b: unknown): boolean => {
  switch (op) {
    case "eq": return a === b;
    case "ne": return a !== b;
    case "lt": return (a as number) < (b as number);
    case "le": return (a as number) <= (b as number);
    case "gt": return (a as number) > (b as number);
    case "ge": return (a as number) >= (b as number);
    default: return false;
  }
};

type Arrays = Record<string, ArrayLike<unknown>>;

/** A column's values without copying when arquero stores a plain or typed array. */
export function columnArray(t: Table, name: string): ArrayLike<unknown> {
  const col = t.column(name) as unknown;
  if (Array.isArray(col) || ArrayBuffer.isView(col)) return col as ArrayLike<unknown>;
  return t.array(name) as ArrayLike<unknown>;
}
const arraysOf = (t: Table): Arrays => Object.fromEntries(t.columnNames().map((c) => [c, columnArray(t, c)]));

function rowFilter(filters: PlanFilter[], side: "base" | "events", A: Arrays): (i: number) => boolean {
  const fs = filters.filter((f) => f.side === side && !("other" in f && f.other.side !== side));
  const tests = fs.map((f) => {
    const col = A[f.column]!;
    if ("other" in f) {
      const other = A[f.other.column]!;
      return (i: number) => cmp(f.op, col[i], other[i]);
    }
    if (f.op === "in") {
      const set = new Set<unknown>(f.value);
      return (i: number) => set.has(col[i]);
    }
    return (i: number) => cmp(f.op, col[i], f.value);
  });
  return (i) => tests.every((t) => t(i));
}

/** The default engine: in memory, over arquero column arrays. */
export class ArqueroEngine implements QueryEngine {
  readonly name = "arquero";

  async execute(plan: Plan, tables: Record<string, Table>): Promise<ExactAggregates> {
    return executeArquero(plan, tables);
  }
}

interface Cell {
  unit: unknown;
  key: unknown[];
  rows: number[]; // measured row indices
  baseRow: number;
}

/** Synchronous core of the arquero engine (exported for benches). */
export function executeArquero(plan: Plan, tables: Record<string, Table>): ExactAggregates {
  const B = arraysOf(tableFor(tables, plan.base.table));
  const nB = tableFor(tables, plan.base.table).numRows();
  const E = plan.events ? arraysOf(tableFor(tables, plan.events.table)) : B;
  const nE = plan.events ? tableFor(tables, plan.events.table).numRows() : nB;
  const baseOk = rowFilter(plan.filters, "base", B);
  const unitB = B[plan.base.unit]!;
  const dimOf = (i: number, base: number) => plan.groupBy.map((g) => (g.side === "base" ? B[g.column]![base] : E[g.column]![i]));

  // Cells keyed by unit (join mode) or unit × group (single-table mode).
  const cells = new Map<unknown, Cell>();
  if (plan.events) {
    for (let i = 0; i < nB; i++) {
      if (!baseOk(i)) continue;
      const u = unitB[i];
      if (cells.has(u)) throw new CleanRoomError("DATASET_INVALID", "the base table of a join must have one row per privacy unit after filters", { field: plan.base.unit });
      cells.set(u, { unit: u, key: dimOf(i, i), rows: [], baseRow: i });
    }
    const evOk = rowFilter(plan.filters, "events", E);
    const cross = plan.filters.filter((f): f is Extract<PlanFilter, { other: ColumnRef }> => "other" in f && f.other.side !== f.side);
    const joinE = E[plan.events.joinOn]!;
    for (let i = 0; i < nE; i++) {
      const cell = cells.get(joinE[i]);
      if (cell === undefined || !evOk(i)) continue;
      let ok = true;
      for (const f of cross) {
        const l = f.side === "base" ? B[f.column]![cell.baseRow] : E[f.column]![i];
        const r = f.other.side === "base" ? B[f.other.column]![cell.baseRow] : E[f.other.column]![i];
        if (!cmp(f.op, l, r)) { ok = false; break; }
      }
      if (ok) cell.rows.push(i);
    }
  } else {
    const perUnit = new Map<unknown, number[]>();
    for (let i = 0; i < nB; i++) {
      if (!baseOk(i)) continue;
      const u = unitB[i];
      const list = perUnit.get(u);
      if (list) list.push(i);
      else perUnit.set(u, [i]);
    }
    for (const [u, rows] of perUnit) {
      for (const i of capRows(rows, plan, E)) {
        const key = dimOf(i, i);
        const id = plan.groupBy.length ? JSON.stringify([u, key]) : u;
        const cell = cells.get(id);
        if (cell) cell.rows.push(i);
        else cells.set(id, { unit: u, key, rows: [i], baseRow: i });
      }
    }
  }

  const groups = new Map<string, GroupAggregate & { ids?: unknown[] }>();
  for (const cell of cells.values()) {
    const rows = plan.events ? capRows(cell.rows, plan, E) : cell.rows;
    if (plan.events?.join === "inner" && rows.length === 0) continue;
    const gk = JSON.stringify(cell.key);
    let g = groups.get(gk);
    if (!g) {
      g = { key: cell.key as GroupAggregate["key"], units: 0, values: Object.fromEntries(plan.measures.map((m) => [m.name, 0])) };
      if (plan.withUnits) g.ids = [];
      groups.set(gk, g);
    }
    g.units++;
    g.ids?.push(cell.unit);
    for (const m of plan.measures) {
      let v: number;
      if (m.kind === "count") v = rows.length;
      else if (m.kind === "unitsWithRows") v = rows.length > 0 ? 1 : 0;
      else {
        let s = 0;
        if (plan.events && m.column!.side === "base") s = B[m.column!.column]![cell.baseRow] as number;
        else {
          const col = E[m.column!.column]!;
          for (const i of rows) s += col[i] as number;
        }
        s = clamp(s, m.lo!, m.hi!);
        v = m.kind === "sumSquares" ? s * s : s;
      }
      g.values[m.name]! += v;
    }
  }
  const out = [...groups.values()].map(({ ids, ...g }) => (ids ? { ...g, unitIds: ids.map(String).sort() } : g));
  checkExact(out);
  return { dimensions: plan.groupBy.map((g) => g.as), measures: plan.measures.map((m) => m.name), groups: sortGroups(out) };
}

function capRows(rows: number[], plan: Plan, E: Arrays): number[] {
  const cap = plan.rowCap;
  if (!cap || rows.length <= cap.cap) return rows;
  const cols = cap.orderBy.map((c) => E[c]!);
  return rows
    .slice()
    .sort((a, b) => {
      for (const col of cols) {
        const c = compareValues(col[a], col[b]);
        if (c !== 0) return c;
      }
      return a - b;
    })
    .slice(0, cap.cap);
}
