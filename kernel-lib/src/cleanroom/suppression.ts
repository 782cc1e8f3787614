/**
 * Small-cell suppression for two-way tables published with their margins, the way health
 * statistics are published (e.g. CMS's cell-size rule: counts 1–10 are not shown; the UK ONS
 * and NCHS use the same idea with other cut-offs):
 *
 *   primary suppression        every cell (and margin) below the minimum is withheld;
 *   complementary suppression  further cells are withheld so that no withheld value can be
 *                              computed back from the published cells and margins.
 *
 * A table with its row, column and grand totals is a linear system: each row says Σ_j x_ij =
 * R_i, each column Σ_i x_ij = C_j, and Σ R_i = Σ C_j = T. After suppression the unknowns are
 * the withheld cells and margins; an unknown is *exposed* when the published equations pin it
 * to one value (e.g. the only suppressed cell of a row = its row total − the row's other
 * cells). `recoverSuppressed` is that attacker: exact Gauss–Jordan elimination over the
 * integers (fraction-free, bigint) that returns every withheld value the published numbers
 * determine. `complementarySuppression` withholds extra cells, cheapest first (fewest people
 * hidden), until the attacker recovers nothing: for an exposed cell it tries rectangles
 * (i,j)–(i,j')–(i',j)–(i',j'), which put the cell on a cycle of unknowns (a cycle can be
 * shifted by +d/−d without changing any margin, so no value on it is determined).
 *
 * What this does NOT stop: bounds. Non-negativity and "it was < 11" still give intervals
 * (an interval attack, Fellegi 1972); protection here is against exact recovery. Tables are
 * small (≤ 64 × 64): the elimination is O(equations² × unknowns).
 */
import { invalid } from "../errors.js";

/** A two-way table as published: `null` = withheld. */
export interface PublishedTable {
  cells: (bigint | null)[][];
  rowMargins: (bigint | null)[];
  colMargins: (bigint | null)[];
  total: bigint | null;
}

export type SuppressedRef =
  { kind: "cell"; row: number; col: number } | { kind: "rowMargin"; row: number } | { kind: "colMargin"; col: number } | { kind: "total" };

export interface Recovered {
  ref: SuppressedRef;
  value: bigint;
}

const refKey = (r: SuppressedRef): string =>
  r.kind === "cell" ? `c:${r.row}:${r.col}` : r.kind === "rowMargin" ? `r:${r.row}` : r.kind === "colMargin" ? `k:${r.col}` : "t";

function checkShape(t: PublishedTable): { nr: number; nc: number } {
  const nr = t.cells.length;
  const nc = nr ? t.cells[0]!.length : 0;
  if (nr < 1 || nr > 64 || nc < 1 || nc > 64) invalid("table.cells", "a 1…64 × 1…64 grid", `${nr} × ${nc}`);
  if (t.cells.some((r) => r.length !== nc)) invalid("table.cells", `rows of ${nc} cells`, "ragged rows");
  if (t.rowMargins.length !== nr) invalid("table.rowMargins", `${nr} row totals`, t.rowMargins.length);
  if (t.colMargins.length !== nc) invalid("table.colMargins", `${nc} column totals`, t.colMargins.length);
  return { nr, nc };
}

const abs = (x: bigint) => (x < 0n ? -x : x);
function gcd(a: bigint, b: bigint): bigint {
  a = abs(a);
  b = abs(b);
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * The attacker: every withheld value the published cells and margins determine exactly.
 *
 * @example
 * recoverSuppressed({ cells: [[null, 20n], [30n, 40n]], rowMargins: [27n, 70n], colMargins: [37n, 60n], total: 97n })
 * // → [{ ref: { kind: "cell", row: 0, col: 0 }, value: 7n }]
 */
export function recoverSuppressed(t: PublishedTable): Recovered[] {
  const { nr, nc } = checkShape(t);
  const unknowns: SuppressedRef[] = [];
  const index = new Map<string, number>();
  const add = (r: SuppressedRef) => {
    index.set(refKey(r), unknowns.length);
    unknowns.push(r);
  };
  for (let i = 0; i < nr; i++) for (let j = 0; j < nc; j++) if (t.cells[i]![j] === null) add({ kind: "cell", row: i, col: j });
  t.rowMargins.forEach((v, i) => v === null && add({ kind: "rowMargin", row: i }));
  t.colMargins.forEach((v, j) => v === null && add({ kind: "colMargin", col: j }));
  if (t.total === null) add({ kind: "total" });
  if (unknowns.length === 0) return [];
  const n = unknowns.length;
  // one equation per line: Σ (+1) members − (+1) its total = 0, known terms moved to the right
  const eqs: bigint[][] = [];
  const equation = (terms: [SuppressedRef, bigint | null, bigint][]) => {
    const row = new Array<bigint>(n + 1).fill(0n);
    let rhs = 0n;
    for (const [ref, value, coef] of terms) {
      if (value === null) row[index.get(refKey(ref))!]! += coef;
      else rhs -= coef * value;
    }
    row[n] = rhs;
    if (row.slice(0, n).some((x) => x !== 0n)) eqs.push(row);
  };
  for (let i = 0; i < nr; i++)
    equation([
      ...t.cells[i]!.map((v, j): [SuppressedRef, bigint | null, bigint] => [{ kind: "cell", row: i, col: j }, v, 1n]),
      [{ kind: "rowMargin", row: i }, t.rowMargins[i]!, -1n],
    ]);
  for (let j = 0; j < nc; j++)
    equation([
      ...t.cells.map((r, i): [SuppressedRef, bigint | null, bigint] => [{ kind: "cell", row: i, col: j }, r[j]!, 1n]),
      [{ kind: "colMargin", col: j }, t.colMargins[j]!, -1n],
    ]);
  equation([
    ...t.rowMargins.map((v, i): [SuppressedRef, bigint | null, bigint] => [{ kind: "rowMargin", row: i }, v, 1n]),
    [{ kind: "total" }, t.total, -1n],
  ]);
  equation([
    ...t.colMargins.map((v, j): [SuppressedRef, bigint | null, bigint] => [{ kind: "colMargin", col: j }, v, 1n]),
    [{ kind: "total" }, t.total, -1n],
  ]);
  // fraction-free Gauss–Jordan elimination
  const pivots: number[] = [];
  let rank = 0;
  for (let col = 0; col < n && rank < eqs.length; col++) {
    let p = -1;
    for (let r = rank; r < eqs.length && p < 0; r++) if (eqs[r]![col] !== 0n) p = r;
    if (p < 0) continue;
    [eqs[rank], eqs[p]] = [eqs[p]!, eqs[rank]!];
    const piv = eqs[rank]!;
    for (let r = 0; r < eqs.length; r++) {
      if (r === rank || eqs[r]![col] === 0n) continue;
      const f = eqs[r]![col]!;
      const row = eqs[r]!.map((x, k) => x * piv[col]! - piv[k]! * f);
      const g = row.reduce((a, b) => gcd(a, b), 0n);
      eqs[r] = g > 1n ? row.map((x) => x / g) : row;
    }
    pivots.push(col);
    rank++;
  }
  const out: Recovered[] = [];
  for (let r = 0; r < rank; r++) {
    const row = eqs[r]!;
    const col = pivots[r]!;
    let alone = true;
    for (let k = 0; k < n && alone; k++) if (k !== col && row[k] !== 0n) alone = false;
    if (alone) out.push({ ref: unknowns[col]!, value: row[n]! / row[col]! });
  }
  return out;
}

/** What to withhold: the primary pattern plus the complementary cells chosen. */
export interface SuppressionPattern {
  cells: boolean[][];
  rowMargins: boolean[];
  colMargins: boolean[];
  total: boolean;
  /** Cells withheld only to protect others, as [row, col]. */
  complementary: [number, number][];
}

/**
 * Primary suppression (`value < minimum`, zeros published) and then complementary
 * suppression until `recoverSuppressed` finds nothing. `weights` (people per cell) are what
 * a complementary choice costs; margins are the sums of the cells.
 *
 * @example
 * const p = complementarySuppression([[7n, 20n], [30n, 40n]], 11n);  // p.complementary → three cells: the 2×2 rectangle
 */
export function complementarySuppression(
  weights: bigint[][],
  minimum: bigint,
  options: {
    complementary?: boolean;
    /** The primary pattern when the rule is more than `value < minimum` (e.g. a second count per cell). */
    primary?: Omit<SuppressionPattern, "complementary">;
  } = {},
): SuppressionPattern {
  const small = (v: bigint) => v > 0n && v < minimum;
  const rowM = weights.map((r) => r.reduce((a, b) => a + b, 0n));
  const colM = weights[0] ? weights[0].map((_, j) => weights.reduce((a, r) => a + r[j]!, 0n)) : [];
  const total = rowM.reduce((a, b) => a + b, 0n);
  const given = options.primary;
  const pat: SuppressionPattern = {
    cells: given ? given.cells.map((r) => r.slice()) : weights.map((r) => r.map(small)),
    rowMargins: given ? given.rowMargins.slice() : rowM.map(small),
    colMargins: given ? given.colMargins.slice() : colM.map(small),
    total: given ? given.total : small(total),
    complementary: [],
  };
  checkShape({ cells: weights, rowMargins: rowM, colMargins: colM, total });
  if (options.complementary === false) return pat;
  const published = (): PublishedTable => ({
    cells: weights.map((r, i) => r.map((v, j) => (pat.cells[i]![j] ? null : v))),
    rowMargins: rowM.map((v, i) => (pat.rowMargins[i] ? null : v)),
    colMargins: colM.map((v, j) => (pat.colMargins[j] ? null : v)),
    total: pat.total ? null : total,
  });
  const exposed = (ref: SuppressedRef) => recoverSuppressed(published()).some((r) => refKey(r.ref) === refKey(ref));
  const withhold = (cells: [number, number][]) => {
    for (const [i, j] of cells)
      if (!pat.cells[i]![j]) {
        pat.cells[i]![j] = true;
        pat.complementary.push([i, j]);
      }
  };
  const nr = weights.length;
  const nc = weights[0]!.length;
  for (let guard = 0; guard <= nr * nc + nr + nc + 1; guard++) {
    const found = recoverSuppressed(published());
    if (found.length === 0) return pat;
    const ref = found[0]!.ref;
    // candidate sets of extra cells, cheapest (fewest people withheld) first
    const candidates: { cells: [number, number][]; cost: bigint }[] = [];
    // an empty cell is a poor complement (an attacker with "counts are ≥ 0" gets a one-sided bound from it): last resort
    const zeroCost = total + 1n;
    const cost = (cells: [number, number][]) =>
      cells.reduce((a, [i, j]) => a + (pat.cells[i]![j] ? 0n : weights[i]![j]! === 0n ? zeroCost : weights[i]![j]! + 1n), 0n);
    if (ref.kind === "cell") {
      for (let i2 = 0; i2 < nr; i2++)
        for (let j2 = 0; j2 < nc; j2++) {
          if (i2 === ref.row || j2 === ref.col) continue;
          const cells: [number, number][] = [
            [ref.row, j2],
            [i2, ref.col],
            [i2, j2],
          ];
          candidates.push({ cells, cost: cost(cells) });
        }
    } else {
      // a margin: withhold a cell of its line (or any cell for the total)
      for (let i = 0; i < nr; i++)
        for (let j = 0; j < nc; j++) {
          if (ref.kind === "rowMargin" && i !== ref.row) continue;
          if (ref.kind === "colMargin" && j !== ref.col) continue;
          candidates.push({ cells: [[i, j]], cost: cost([[i, j]]) });
        }
    }
    candidates.sort((a, b) => (a.cost < b.cost ? -1 : a.cost > b.cost ? 1 : 0));
    const fresh = candidates.filter((c) => c.cost > 0n);
    const pick = fresh.find((c) => {
      const before = c.cells.filter(([i, j]) => !pat.cells[i]![j]);
      for (const [i, j] of before) pat.cells[i]![j] = true;
      const still = exposed(ref);
      for (const [i, j] of before) pat.cells[i]![j] = false;
      return !still;
    });
    if (pick) withhold(pick.cells);
    else if (fresh[0]) withhold(fresh[0].cells);
    else {
      // nothing left to withhold in its lines: withhold the margins themselves
      pat.rowMargins.fill(true);
      pat.colMargins.fill(true);
      pat.total = true;
    }
  }
  // the loop is bounded by the number of cells; if it ran out, withholding every margin leaves nothing determined
  pat.rowMargins.fill(true);
  pat.colMargins.fill(true);
  pat.total = true;
  return pat;
}
