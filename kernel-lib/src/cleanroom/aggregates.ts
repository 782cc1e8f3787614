/**
 * Shared shapes and helpers of the query engines (see engine.ts for the plan semantics):
 * the exact-aggregate result type, the engine interface, value ordering, group sorting and
 * the exact-range check. No engine logic lives here, so both engines import it freely.
 *
 * Exact sums (issue 14 item 9): aggregates are exact integers of unbounded size (`bigint`),
 * never doubles, so no data can make an accepted plan fail at execution ("a sum past 2^53
 * raised ENGINE_ERROR, otherwise not" was a one-bit oracle outside the charged ε, even for
 * a suppressed group). Both engines compute in 128-bit range: DuckDB in HUGEINT, arquero in
 * doubles while every partial sum is a safe integer and in `bigint` from there on. The one
 * limit, HUGEINT's, is checked on the DECLARED bounds when the template is checked (before
 * any charge): a group has at most `MAX_UNITS_PER_GROUP` units (a JS array's length limit,
 * so no in-memory table is larger), each contributing at most max(|lo|, |hi|) (squared for
 * `sumSquares`), so an accepted plan's sums always fit.
 */
import { CleanRoomError, invalid } from "../errors.js";
import { columnArray, type Table } from "./dataset.js";

export type DimValue = string | number | null;

/** Exact aggregates of one output group. */
export interface GroupAggregate {
  key: DimValue[];
  /** Distinct privacy units in the group. */
  units: number;
  /** Exact per-measure aggregates (any size: see the module header). */
  values: Record<string, bigint>;
  /** Sorted unit ids (only when `plan.withUnits`); internal, never released. */
  unitIds?: string[];
}

/** What an engine returns: exact, pre-noise, sorted by key. */
export interface ExactAggregates {
  dimensions: string[];
  measures: string[];
  groups: GroupAggregate[];
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
  if (!t)
    throw new CleanRoomError("ENGINE_ERROR", `"tables.${key}" expected the table of a plan input, got none`, { field: `tables.${key}` });
  return t;
}

/** Units per group can never exceed this: a JS array (so an arquero column) holds fewer rows. */
export const MAX_UNITS_PER_GROUP = 2n ** 32n;
/** The largest exact aggregate both engines can hold (DuckDB HUGEINT, 2^127 − 1). */
export const MAX_EXACT_AGGREGATE = 2n ** 127n - 1n;

/**
 * Refuse (`TEMPLATE_INVALID`, before any charge) a `sum`/`avg`/`sumSquares` whose declared
 * bounds could make a group's exact sum leave the range both engines hold. Depends on the
 * template only, never on the data, so the refusal says nothing about anyone.
 *
 * @example requireExactRange("sumSquares", [0, 1e15], "template.aggregates.1.bounds", "value_cents") // throws
 */
export function requireExactRange(fn: string, bounds: readonly [number, number], field: string, column: string): void {
  const m = BigInt(Math.max(Math.abs(bounds[0]), Math.abs(bounds[1])));
  const perUnit = fn === "sumSquares" ? m * m : m;
  if (perUnit * MAX_UNITS_PER_GROUP > MAX_EXACT_AGGREGATE)
    invalid(
      field,
      `bounds of ${column} with max(|lo|, |hi|)${fn === "sumSquares" ? "²" : ""} × 2^32 units ≤ 2^127 − 1 (the exact 128-bit range of the engines)`,
      Math.abs(bounds[0]) > Math.abs(bounds[1]) ? bounds[0] : bounds[1],
      "TEMPLATE_INVALID",
    );
}

export const clamp = (x: number, lo: number, hi: number) => (x < lo ? lo : x > hi ? hi : x);

export const cmp = (op: string, a: unknown, b: unknown): boolean => {
  switch (op) {
    case "eq":
      return a === b;
    case "ne":
      return a !== b;
    case "lt":
      return (a as number) < (b as number);
    case "le":
      return (a as number) <= (b as number);
    case "gt":
      return (a as number) > (b as number);
    case "ge":
      return (a as number) >= (b as number);
    default:
      return false;
  }
};

export type Arrays = Record<string, ArrayLike<unknown>>;

export const arraysOf = (t: Table): Arrays => Object.fromEntries(t.columnNames().map((c) => [c, columnArray(t, c)]));

const SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
/**
 * How a released integer appears in a result's JSON: a `number` when it is a safe integer
 * (|x| ≤ 2^53 − 1, every realistic count and sum), otherwise its exact decimal string (so a
 * released value is never rounded). Applied to released (noised, in noise mode) values only,
 * so which form a value takes is post-processing of the release and says nothing more.
 *
 * @example releasedInt(12n) // 12;  releasedInt(2n ** 60n) // "1152921504606846976"
 */
export const releasedInt = (x: bigint): number | string => (x <= SAFE_BIG && x >= -SAFE_BIG ? Number(x) : x.toString());
