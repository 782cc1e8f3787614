/**
 * One way for every benchmark to state a result (issue 18: "every bench prints its ratio next
 * to its target, and the README table is regenerated from a bench run").
 *
 *   import { report } from "./targets.mjs";
 *   report({
 *     id: "psi.10k-vs-native",                       // stable, unique across benches
 *     what: "PSI 10k × 10k, libsodium 2 threads vs native 1 thread",
 *     measured: "3824 ms vs 3131 ms",                 // what was timed, in words and units
 *     value: 1.22, unit: "×",                         // the number the target is about
 *     target: { op: "<=", value: 0.9 },               // omit for a row with no target
 *     note: "CPU 2.10× native",                       // optional, shown after the verdict
 *   });
 *
 * Prints one human line ("target met" or "missed by 1.36×") and, when `npm run bench` set
 * BENCH_REPORT, appends the row as one JSON line to that file; scripts/bench.mjs turns the rows
 * of one run into the summary table (and, with --readme, into the README's table).
 */
import fs from "node:fs";

const OPS = { "<=": (v, t) => v <= t, "<": (v, t) => v < t, ">=": (v, t) => v >= t, ">": (v, t) => v > t };

/** "met" or "missed by N×" for a measured value against its target. */
export function verdict(value, target) {
  if (!target) return "";
  const ok = OPS[target.op]?.(value, target.value);
  if (ok === undefined) throw new TypeError(`target.op: expected one of ${Object.keys(OPS).join(" ")}`);
  if (ok) return "met";
  const by = target.op.startsWith("<") ? value / target.value : target.value / value;
  return `missed by ${Number.isFinite(by) ? by.toFixed(2) : "∞"}×`;
}

/** How an op reads in a table: "≤ 0.90×". */
export const SYMBOL = { "<=": "≤", "<": "<", ">=": "≥", ">": ">" };

const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

/** Print a result line and record it for the run's summary. Returns the verdict. */
export function report(row) {
  if (typeof row?.id !== "string" || !row.id) throw new TypeError("report.id: expected a non-empty string");
  if (typeof row.what !== "string") throw new TypeError("report.what: expected a string");
  if (typeof row.value !== "number" || Number.isNaN(row.value)) throw new TypeError("report.value: expected a number");
  const v = verdict(row.value, row.target);
  const unit = row.unit ?? "";
  const tgt = row.target ? ` (target ${SYMBOL[row.target.op]} ${fmt(row.target.value)}${unit}: ${v})` : "";
  console.log(
    `  ▸ ${row.what}: ${row.measured ? `${row.measured} → ` : ""}${fmt(row.value)}${unit}${tgt}${row.note ? `; ${row.note}` : ""}`,
  );
  const file = process.env.BENCH_REPORT;
  if (file) {
    const line = { ...row, verdict: v, at: new Date().toISOString(), load: loadAverage() };
    fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
  }
  return v;
}

/** The 1-minute load average, two decimals, as a string ("0.42"). */
export function loadAverage() {
  try {
    return fs.readFileSync("/proc/loadavg", "utf8").split(" ")[0];
  } catch {
    return "n/a";
  }
}
