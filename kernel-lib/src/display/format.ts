/**
 * Small formatting helpers shared by the HTML and plain-text fallbacks (and the extension's
 * views): numbers, percentages, intervals, symbols for units and statuses.
 *
 * Pure functions, no dependencies, so both the CommonJS kernel build and the extension's
 * webpack bundle can import them.
 */

/** Human name of a budget unit. */
export function unitSymbol(unit: "epsilon" | "rho"): string {
  return unit === "epsilon" ? "ε" : "ρ";
}

/**
 * Format a number for display: integers as-is with thin grouping, others to `digits`
 * significant decimals without trailing zeros.
 *
 * @example
 * fmtNum(0.123456) // "0.1235"
 * fmtNum(12000)    // "12,000"
 */
export function fmtNum(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined) return "—";
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  const abs = Math.abs(v);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e9)) return v.toExponential(2);
  const fixed = abs >= 100 ? v.toFixed(2) : v.toFixed(digits);
  return fixed.replace(/\.?0+$/, "");
}

/**
 * Format a fraction as a percentage.
 *
 * @example
 * fmtPct(0.1234) // "12.34%"
 */
export function fmtPct(v: number, digits = 2): string {
  return `${(v * 100).toFixed(digits).replace(/\.?0+$/, "")}%`;
}

/**
 * Format an interval.
 *
 * @example
 * fmtInterval([0.01, 0.03], true) // "[1%, 3%]"
 */
export function fmtInterval(ci: readonly [number, number], pct = false): string {
  const f = pct ? (x: number) => fmtPct(x) : (x: number) => fmtNum(x);
  return `[${f(ci[0])}, ${f(ci[1])}]`;
}

/** Fraction of a budget spent, clamped to [0, 1]; 0 for an empty budget. */
export function spentFraction(spent: number, total: number): number {
  if (!(total > 0)) return spent > 0 ? 1 : 0;
  return Math.min(1, Math.max(0, spent / total));
}

/** Status glyphs used by every view: readable without colour. */
export const STATUS_GLYPH: Record<string, string> = {
  ok: "✓",
  refused: "✗",
  failed: "✗",
  skipped: "–",
  allow: "✓",
  deny: "✗",
  charged: "●",
  released: "✓",
  denied: "✗",
  "not-requested": "–",
};

/** Human labels of the trace steps (DESIGN.md "one call, one direction"). */
export const STEP_LABEL: Record<string, string> = {
  parse: "parse input",
  purpose: "purpose check",
  rule: "rule / template",
  plan: "plan",
  cost: "privacy cost",
  budget: "budget check-and-charge",
  execute: "execute",
  threshold: "threshold / suppress",
  audit: "audit entry",
};

/** Shorten a long hex string for tables: first 8 and last 4 characters. */
export function shortHash(h: string): string {
  return h.length > 16 ? `${h.slice(0, 8)}…${h.slice(-4)}` : h;
}

/** The footnote a query view shows when a noisy released value is below zero. */
export const NEGATIVE_NOISE_NOTE =
  "Noise can push a small count (or a sum of squares) below zero; that is the price of the guarantee — " +
  'clamp in your analysis if you must, labelled (cleanRoomQuery(lab, { …, clamp: "nonNegative" })).';

/** The footnote of per-cell ± (avg cells, the remainder row): what they are and that they are approximate. */
export const CELL_PM_NOTE =
  "≈± beside a value: that cell's own ± (normal approximation at the footer's level). An avg is a noisy sum ÷ a noisy count " +
  "(delta method around the released values); a remainder row adds up the noise of every row it merges.";

/** A cell's own ± as the views show it ("≈±3.2"), or "" when the column's ± applies. */
export function cellPlusMinus(pm: readonly (number | null)[] | undefined, j: number): string {
  const v = pm?.[j];
  return v === null || v === undefined ? "" : `≈±${fmtNum(v)}`;
}

/** True for a released cell below zero (a number, or an exact decimal string beyond 2^53). */
export function isNegativeCell(v: unknown): boolean {
  return typeof v === "number" ? v < 0 : typeof v === "string" && /^-\d/.test(v);
}

/** The footnote of an opt-in clamp: how many cells it changed and that it is post-processing. */
export function clampNote(cells: number): string {
  return (
    `post-processing: ${cells} noisy value${cells === 1 ? "" : "s"} below 0 shown as 0 (clamp "nonNegative"; ` +
    "no privacy cost; biases sums upwards) — hover a marked cell for the released value"
  );
}

/** One noisy column's noise in words: "scale 20,000 · sensitivity 10,000 · ±59,915 (95%)". */
export function columnNoiseText(n: {
  parameterName?: string;
  scale: number;
  sensitivity: number;
  halfWidth?: number;
  level?: number;
  note?: string;
}): string {
  const parts = [`${n.parameterName ?? "scale"} ${fmtNum(n.scale)}`, `sensitivity ${fmtNum(n.sensitivity)}`];
  if (n.halfWidth !== undefined) parts.push(`±${fmtNum(n.halfWidth)} (${fmtPct(n.level ?? 0.95, 0)})`);
  if (n.note) parts.push(n.note);
  return parts.join(" · ");
}

/** The ± cell of a noisy column ("±59,915"), "" when it has none. */
export function plusMinus(n: { halfWidth?: number } | undefined): string {
  return n?.halfWidth !== undefined ? `±${fmtNum(n.halfWidth)}` : "";
}
