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
