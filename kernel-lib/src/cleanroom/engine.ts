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
import { columnArray, type Table } from "./dataset.js";
import { materialised } from "./file-ref.js";
import type { ColumnRef, Plan, PlanFilter } from "./plan.js";
import {
  arraysOf,
  clamp,
  cmp,
  compareValues,
  sortGroups,
  tableFor,
  type Arrays,
  type DimValue,
  type ExactAggregates,
  type GroupAggregate,
} from "./aggregates.js";

export * from "./aggregates.js";
export { columnArray } from "./dataset.js";

/** One interface for every engine. */
export interface QueryEngine {
  readonly name: string;
  /**
   * Execute a compiled plan over the room's tables (keyed `"owner/dataset"`).
   * @example const exact = await new ArqueroEngine().execute(plan, { "retailer/purchases": ds.table });
   */
  execute(plan: Plan, tables: Record<string, Table>): Promise<ExactAggregates>;
}

const SAFE = Number.MAX_SAFE_INTEGER;

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
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0]!;
  return (i) => {
    for (let k = 0; k < tests.length; k++) if (!tests[k]!(i)) return false;
    return true;
  };
}

/** The default engine: in memory, over arquero column arrays. */
export class ArqueroEngine implements QueryEngine {
  readonly name = "arquero";

  async execute(plan: Plan, tables: Record<string, Table>): Promise<ExactAggregates> {
    // a file-backed dataset (uploaded on a DuckDB lab of the same store) is read into memory first
    const inMemory: Record<string, Table> = {};
    for (const [k, t] of Object.entries(tables)) inMemory[k] = await materialised(t);
    return executeArquero(plan, inMemory);
  }
}

/** Index of values: dense integer keys use an array, anything else a Map. */
function keyIndex(values: ArrayLike<unknown>, rows: Int32Array | null, n: number) {
  let dense = true;
  let max = -1;
  const count = rows ? rows.length : n;
  for (let j = 0; j < count && dense; j++) {
    const v = values[rows ? rows[j]! : j];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) dense = false;
    else if (v > max) max = v;
  }
  if (dense && max < 4 * count + 1024) {
    const arr = new Int32Array(max + 1).fill(-1);
    return { dense: true as const, arr, map: null };
  }
  return { dense: false as const, arr: null, map: new Map<unknown, number>() };
}

interface JoinIndex {
  /** For each event row, the base row with the same unit (last one if not unique), or -1. */
  eventBase: Int32Array;
  /** True when the unit column of the whole base table is unique. */
  baseUnique: boolean;
}
const joinIndexes = new WeakMap<Table, WeakMap<Table, Map<string, JoinIndex>>>();

/**
 * The hash join of events onto base rows, cached per (base table, events table, columns):
 * tables are immutable, so repeated queries reuse it and run on typed arrays only (the
 * dense-key join by row index the performance note describes).
 */
function joinIndex(bt: Table, unit: string, et: Table, joinOn: string): JoinIndex {
  let byEvents = joinIndexes.get(bt);
  if (!byEvents) joinIndexes.set(bt, (byEvents = new WeakMap()));
  let byCols = byEvents.get(et);
  if (!byCols) byEvents.set(et, (byCols = new Map()));
  const key = `${unit}\u0000${joinOn}`;
  const hit = byCols.get(key);
  if (hit) return hit;
  const U = columnArray(bt, unit);
  const J = columnArray(et, joinOn);
  const nB = bt.numRows();
  const nE = et.numRows();
  const idx = keyIndex(U, null, nB);
  let baseUnique = true;
  for (let i = 0; i < nB; i++) {
    const u = U[i];
    if (idx.dense) {
      if (idx.arr[u as number] !== -1) baseUnique = false;
      idx.arr[u as number] = i;
    } else {
      const before = idx.map.size;
      if (idx.map.set(u, i).size === before) baseUnique = false;
    }
  }
  const eventBase = new Int32Array(nE);
  for (let i = 0; i < nE; i++) {
    const k = J[i];
    eventBase[i] = idx.dense ? (typeof k === "number" && k >= 0 && k < idx.arr.length ? idx.arr[k]! : -1) : (idx.map.get(k) ?? -1);
  }
  const jx = { eventBase, baseUnique };
  byCols.set(key, jx);
  return jx;
}

/** Group codes per base row: one small integer per distinct combination of dimensions. */
function groupCodes(plan: Plan, B: Arrays, rows: Int32Array) {
  const n = rows.length;
  const code = new Int32Array(n);
  const decode: unknown[][] = [];
  if (plan.groupBy.length === 0) {
    decode.push([]);
    return { code, decode };
  }
  const perDim = plan.groupBy.map((g) => {
    const col = B[g.column]!;
    const m = new Map<unknown, number>();
    const c = new Int32Array(n);
    for (let j = 0; j < n; j++) {
      const v = col[rows[j]!];
      let k = m.get(v);
      if (k === undefined) m.set(v, (k = m.size));
      c[j] = k;
    }
    return { c, size: m.size };
  });
  const small = new Map<number, number>();
  for (let j = 0; j < n; j++) {
    let composite = 0;
    for (const d of perDim) composite = composite * d.size + d.c[j]!;
    let g = small.get(composite);
    if (g === undefined) {
      g = decode.length;
      small.set(composite, g);
      const r = rows[j]!;
      decode.push(plan.groupBy.map((gb) => B[gb.column]![r]));
    }
    code[j] = g;
  }
  return { code, decode };
}

function growPush(buf: { a: Int32Array; n: number }, v: number) {
  if (buf.n === buf.a.length) {
    const b = new Int32Array(Math.max(16, buf.a.length * 2));
    b.set(buf.a);
    buf.a = b;
  }
  buf.a[buf.n++] = v;
}

/** Synchronous core of the arquero engine (exported for benches). */
export function executeArquero(plan: Plan, tables: Record<string, Table>): ExactAggregates {
  const bt = tableFor(tables, plan.base.table);
  const B = arraysOf(bt);
  const et = plan.events ? tableFor(tables, plan.events.table) : bt;
  const E = plan.events ? arraysOf(et) : B;
  const nB = bt.numRows();
  const nE = et.numRows();
  const baseOk = rowFilter(plan.filters, "base", B);
  const unitB = B[plan.base.unit]!;

  // Base rows passing the filters.
  const baseBuf = { a: new Int32Array(Math.min(nB, 1 << 16) || 16), n: 0 };
  for (let i = 0; i < nB; i++) if (baseOk(i)) growPush(baseBuf, i);
  const baseRows = baseBuf.a.subarray(0, baseBuf.n);
  const { code: gcode, decode } = groupCodes(plan, B, baseRows);

  // Cells: (unit) in join mode, (unit × group) in single-table mode; measured rows per cell.
  let cellUnit: Int32Array; // base-row index carrying the unit value (and base columns in join mode)
  let cellGroup: Int32Array;
  let pairCell: { a: Int32Array; n: number };
  let pairRow: { a: Int32Array; n: number };
  let nCells: number;
  if (plan.events) {
    nCells = baseRows.length;
    cellUnit = baseRows;
    cellGroup = gcode;
    const jx = joinIndex(bt, plan.base.unit, et, plan.events.joinOn);
    const cellOfBase = new Int32Array(nB).fill(-1);
    for (let j = 0; j < nCells; j++) cellOfBase[baseRows[j]!] = j;
    let eb = jx.eventBase;
    if (!jx.baseUnique) {
      // Slow path: units repeat in the whole base table, so map events to the filtered rows.
      const seen = new Map<unknown, number>();
      for (let j = 0; j < nCells; j++) {
        const before = seen.size;
        if (seen.set(unitB[baseRows[j]!], baseRows[j]!).size === before)
          throw new CleanRoomError("DATASET_INVALID", "the base table of a join must have one row per privacy unit after filters", {
            field: plan.base.unit,
          });
      }
      const joinE = E[plan.events.joinOn]!;
      eb = new Int32Array(nE);
      for (let i = 0; i < nE; i++) eb[i] = seen.get(joinE[i]) ?? -1;
    }
    const evOk = rowFilter(plan.filters, "events", E);
    const cross = plan.filters.filter((f): f is Extract<PlanFilter, { other: ColumnRef }> => "other" in f && f.other.side !== f.side);
    pairCell = { a: new Int32Array(1024), n: 0 };
    pairRow = { a: new Int32Array(1024), n: 0 };
    for (let i = 0; i < nE; i++) {
      const b = eb[i]!;
      if (b < 0) continue;
      const c = cellOfBase[b]!;
      if (c < 0 || !evOk(i)) continue;
      if (cross.length) {
        let ok = true;
        const br = baseRows[c]!;
        for (let x = 0; x < cross.length; x++) {
          const f = cross[x]!;
          const l = f.side === "base" ? B[f.column]![br] : E[f.column]![i];
          const r = f.other.side === "base" ? B[f.other.column]![br] : E[f.other.column]![i];
          if (!cmp(f.op, l, r)) {
            ok = false;
            break;
          }
        }
        if (!ok) continue;
      }
      growPush(pairCell, c);
      growPush(pairRow, i);
    }
    capPairs(pairCell, pairRow, nCells, plan, E);
  } else {
    // units over the filtered rows; cap per unit first, then split into (unit, group) cells
    const idx = keyIndex(unitB, baseRows, nB);
    const unitOf = new Int32Array(baseRows.length);
    const firstRow: number[] = [];
    for (let j = 0; j < baseRows.length; j++) {
      const u = unitB[baseRows[j]!];
      let id = idx.dense ? idx.arr[u as number]! : (idx.map.get(u) ?? -1);
      if (id < 0) {
        id = firstRow.length;
        firstRow.push(baseRows[j]!);
        if (idx.dense) idx.arr[u as number] = id;
        else idx.map.set(u, id);
      }
      unitOf[j] = id;
    }
    const uc = { a: unitOf.slice(), n: unitOf.length };
    const ur = { a: Int32Array.from(baseRows.keys()), n: baseRows.length }; // positions into baseRows
    capPairs(uc, ur, firstRow.length, plan, E, baseRows);
    const cellOf = new Map<number, number>();
    const cu: number[] = [];
    const cg: number[] = [];
    pairCell = { a: new Int32Array(uc.n), n: uc.n };
    pairRow = { a: new Int32Array(uc.n), n: uc.n };
    for (let j = 0; j < uc.n; j++) {
      const pos = ur.a[j]!;
      const key = uc.a[j]! * decode.length + gcode[pos]!;
      let c = cellOf.get(key);
      if (c === undefined) {
        c = cu.length;
        cellOf.set(key, c);
        cu.push(firstRow[uc.a[j]!]!);
        cg.push(gcode[pos]!);
      }
      pairCell.a[j] = c;
      pairRow.a[j] = baseRows[pos]!;
    }
    nCells = cu.length;
    cellUnit = Int32Array.from(cu);
    cellGroup = Int32Array.from(cg);
  }

  // Per cell: row count and per-measure sums; then clamp and add to the cell's group.
  // Exact at any size: doubles while every partial sum is a safe integer; a cell whose
  // running sum leaves that range is summed again in bigint (see aggregates.ts).
  const M = plan.measures;
  const nG = decode.length;
  const rowCount = new Int32Array(nCells);
  const sums = M.map((m) => (m.column && !(plan.events && m.column.side === "base") ? new Float64Array(nCells) : null));
  const cols = M.map((m) => (m.column ? (m.column.side === "base" ? B : E)[m.column.column]! : null));
  let wide: Map<number, bigint>[] | null = null; // per measure: cells whose sum left the safe range
  for (let j = 0; j < pairCell.n; j++) {
    const c = pairCell.a[j]!;
    const r = pairRow.a[j]!;
    rowCount[c]!++;
    for (let k = 0; k < M.length; k++) {
      const s = sums[k];
      if (!s) continue;
      const x = (s[c]! += cols[k]![r] as number);
      if (!(x <= SAFE && x >= -SAFE)) (wide ??= M.map(() => new Map()))[k]!.set(c, 0n);
    }
  }
  if (wide)
    for (let j = 0; j < pairCell.n; j++) {
      const c = pairCell.a[j]!;
      for (let k = 0; k < M.length; k++) {
        const w = wide[k]!;
        const b = w.get(c);
        if (b !== undefined) w.set(c, b + BigInt(cols[k]![pairRow.a[j]!] as number));
      }
    }
  const units = new Float64Array(nG);
  const acc = M.map(() => new Float64Array(nG)); // safe-integer part
  const big = M.map(() => new Map<number, bigint>()); // the terms that would have left it
  /** acc[k][g] += x·y exactly (x, y safe integers). */
  const add = (k: number, g: number, x: number, y: number) => {
    const p = x * y;
    const a = acc[k]![g]! + p;
    if (p <= SAFE && p >= -SAFE && a <= SAFE && a >= -SAFE) acc[k]![g] = a;
    else big[k]!.set(g, (big[k]!.get(g) ?? 0n) + BigInt(x) * BigInt(y));
  };
  const ids: unknown[][] | null = plan.withUnits ? Array.from({ length: nG }, () => []) : null;
  const inner = plan.events?.join === "inner";
  for (let c = 0; c < nCells; c++) {
    const n = rowCount[c]!;
    if (inner && n === 0) continue;
    const g = cellGroup[c]!;
    units[g]!++;
    ids?.[g]!.push(unitB[cellUnit[c]!]);
    for (let k = 0; k < M.length; k++) {
      const m = M[k]!;
      if (m.kind === "count") add(k, g, n, 1);
      else if (m.kind === "countSquares") add(k, g, n, n);
      else if (m.kind === "unitsWithRows") add(k, g, n > 0 ? 1 : 0, 1);
      else {
        const exact = wide?.[k]!.get(c);
        // clamped into [lo, hi] (safe integers), so a bigint sum becomes a bound
        const v =
          exact !== undefined
            ? exact < BigInt(m.lo!)
              ? m.lo!
              : exact > BigInt(m.hi!)
                ? m.hi!
                : Number(exact)
            : clamp(sums[k] ? sums[k]![c]! : (cols[k]![cellUnit[c]!] as number), m.lo!, m.hi!);
        add(k, g, v, m.kind === "sumSquares" ? v : 1);
      }
    }
  }
  const out: GroupAggregate[] = [];
  for (let g = 0; g < nG; g++) {
    if (units[g] === 0) continue;
    const values = Object.fromEntries(M.map((m, k) => [m.name, BigInt(acc[k]![g]!) + (big[k]!.get(g) ?? 0n)]));
    const ga: GroupAggregate = { key: decode[g] as DimValue[], units: units[g]!, values };
    if (ids) ga.unitIds = ids[g]!.map(String).sort();
    out.push(ga);
  }
  return { dimensions: plan.groupBy.map((g) => g.as), measures: M.map((m) => m.name), groups: sortGroups(out) };
}

/**
 * Contribution bounding in place: keep at most `rowCap.cap` pairs per cell, the first in
 * `rowCap.orderBy` order (ties broken by row index; tied rows are identical for the plan).
 * `rowOf` maps a pair's row value to a table row (single-table mode stores positions).
 */
function capPairs(
  cell: { a: Int32Array; n: number },
  row: { a: Int32Array; n: number },
  nCells: number,
  plan: Plan,
  E: Arrays,
  rowOf?: Int32Array,
): void {
  const cap = plan.rowCap;
  if (!cap) return;
  const count = new Int32Array(nCells);
  for (let j = 0; j < cell.n; j++) count[cell.a[j]!]!++;
  let over = false;
  for (let c = 0; c < nCells; c++)
    if (count[c]! > cap.cap) {
      over = true;
      break;
    }
  if (!over) return;
  // CSR by cell, sort only the cells over the cap.
  const start = new Int32Array(nCells + 1);
  for (let c = 0; c < nCells; c++) start[c + 1] = start[c]! + count[c]!;
  const fill = start.slice(0, nCells);
  const sorted = new Int32Array(cell.n);
  for (let j = 0; j < cell.n; j++) sorted[fill[cell.a[j]!]!++] = row.a[j]!;
  const cols = cap.orderBy.map((c) => E[c]!);
  const tr = (r: number) => (rowOf ? rowOf[r]! : r);
  const byOrder = (a: number, b: number) => {
    for (const col of cols) {
      const d = compareValues(col[tr(a)], col[tr(b)]);
      if (d !== 0) return d;
    }
    return a - b;
  };
  let n = 0;
  for (let c = 0; c < nCells; c++) {
    let seg: ArrayLike<number> = sorted.subarray(start[c]!, start[c + 1]!);
    if (seg.length > cap.cap) seg = Array.from(seg).sort(byOrder).slice(0, cap.cap);
    for (let j = 0; j < seg.length; j++) {
      cell.a[n] = c;
      row.a[n] = seg[j]!;
      n++;
    }
  }
  cell.n = n;
}
