/**
 * Shared shapes and helpers of the query engines (see engine.ts for the plan semantics):
 * the exact-aggregate result type, the engine interface, value ordering, group sorting and
 * the exact-integer check. No engine logic lives here, so both engines import it freely.
 */
import { CleanRoomError } from "../errors.js";
import type { Table } from "./dataset.js";
import type { Plan } from "./plan.js";

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

export const cmp = (op: string, a: unknown, b: unknown): boolean => {
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

export type Arrays = Record<string, ArrayLike<unknown>>;

/** A column's values without copying when arquero stores a plain or typed array. */
export function columnArray(t: Table, name: string): ArrayLike<unknown> {
  const col = t.column(name) as unknown;
  if (Array.isArray(col) || ArrayBuffer.isView(col)) return col as ArrayLike<unknown>;
  return t.array(name) as ArrayLike<unknown>;
}
export const arraysOf = (t: Table): Arrays => Object.fromEntries(t.columnNames().map((c) => [c, columnArray(t, c)]));
