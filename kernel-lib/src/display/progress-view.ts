/**
 * The `progress` payload's pure parts: the ETA estimate, the update throttle, the duration
 * format, and the `text/plain` / `text/html` fallbacks of a progress bar. No I/O and no
 * imports beyond the schema and format helpers, so html.ts, text.ts, the reporter
 * (progress.ts) and the extension can all use them without an import cycle.
 *
 * Threat model: a progress payload carries counts of work units, phase names chosen by the
 * library and durations — never an element, a row or a value; strings are still escaped in
 * HTML (a payload is untrusted display data).
 */
import type { PayloadOf } from "./schema.js";
import { fmtNum } from "./format.js";

/** The fewest milliseconds between two published updates: at most 5 updates a second. */
export const PROGRESS_MIN_INTERVAL_MS = 200;
/** Before this much time and 2% of the work, an ETA is noise: show none. */
const ETA_MIN_ELAPSED_MS = 500;
const ETA_MIN_FRACTION = 0.02;

/**
 * Time left at the average rate so far: elapsed × (total − done) / done. `null` while unknown
 * (nothing done yet, too early, or nothing left).
 *
 * @example
 * estimateEtaMs(250, 1000, 2000) // 6000 — a quarter done in 2 s, three quarters to go
 */
export function estimateEtaMs(done: number, total: number, elapsedMs: number): number | null {
  if (!(total > 0) || !(done > 0) || done >= total) return null;
  if (elapsedMs < ETA_MIN_ELAPSED_MS || done / total < ETA_MIN_FRACTION) return null;
  return Math.round((elapsedMs * (total - done)) / done);
}

/**
 * A trailing-edge-free throttle: `ready(now)` is true for the first call and then at most once
 * per `minIntervalMs`; a caller that must publish (the final state) calls `mark(now)` itself.
 *
 * @example
 * const t = new Throttle(200); t.ready(0); // true
 * t.ready(150); // false
 * t.ready(200); // true
 */
export class Throttle {
  private last = -Infinity;
  constructor(readonly minIntervalMs: number = PROGRESS_MIN_INTERVAL_MS) {}
  ready(now: number): boolean {
    if (now - this.last < this.minIntervalMs) return false;
    this.last = now;
    return true;
  }
  mark(now: number): void {
    this.last = now;
  }
}

/**
 * A duration for people: "0.4 s", "12 s", "3 min 05 s", "1 h 02 min".
 *
 * @example
 * fmtDuration(65_000) // "1 min 05 s"
 */
export function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const pad = (n: number) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
}

/** Fraction done in [0, 1] (a finished run is 1 whatever the counts). */
export function progressFraction(p: PayloadOf<"progress">): number {
  if (p.state === "done") return 1;
  return p.total > 0 ? Math.min(1, p.done / p.total) : 0;
}

/** "42%" (floored: 100% only when finished). */
export function fmtPercent(p: PayloadOf<"progress">): string {
  const f = progressFraction(p);
  return `${p.state === "done" ? 100 : Math.min(99, Math.floor(f * 100))}%`;
}

/**
 * The counts a person reads: the current phase's own done/total when the job reports phases
 * (a 150k-row upload reads "check rows · 150,000/150,000", not the sum of work units over
 * every phase), the whole job's otherwise. A finished job shows no counts (100% says it).
 */
function statusCounts(p: PayloadOf<"progress">): string | null {
  if (p.state === "done") return p.phases.length > 1 ? null : `${fmtNum(p.total)}/${fmtNum(p.total)}`;
  const i = p.phases.findIndex((x) => x.name === p.phase);
  if (i < 0) return `${fmtNum(p.done)}/${fmtNum(p.total)}`;
  const cur = p.phases[i]!;
  return `${fmtNum(cur.done)}/${fmtNum(cur.total)}${p.phases.length > 1 ? ` (phase ${i + 1} of ${p.phases.length})` : ""}`;
}

/** The one status line: "server: blind client set · 2,000/5,000 (phase 3 of 3) · 60% · elapsed 6.2 s · ETA 4.1 s". */
export function progressStatusLine(p: PayloadOf<"progress">): string {
  const parts = [p.state === "running" ? p.phase : p.state === "done" ? "done" : `failed during ${p.phase}`];
  const counts = statusCounts(p);
  if (counts) parts.push(counts);
  parts.push(fmtPercent(p), `elapsed ${fmtDuration(p.elapsedMs)}`);
  if (p.state === "running") parts.push(p.etaMs === null ? "ETA —" : `ETA ${fmtDuration(p.etaMs)}`);
  return parts.join(" · ");
}

/**
 * Plain-text fallback: a 30-column bar and the status line.
 *
 * @example
 * progressText(payload) // ["PSI (joinKeys)", "[###############...............] server: blind client set · …"]
 */
export function progressText(p: PayloadOf<"progress">): string[] {
  const width = 30;
  const filled = Math.round(progressFraction(p) * width);
  const title = p.title ?? p.task;
  const teaching = p.rngMode === "seeded" ? `  ⚠ ${p.label ?? "teaching mode — not private"}` : "";
  return [`${title}${teaching}`, `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${progressStatusLine(p)}`];
}

/** HTML fallback body (the caller wraps it); `esc` escapes payload strings. */
export function progressHtml(p: PayloadOf<"progress">, esc: (s: unknown) => string): string {
  const pct = (progressFraction(p) * 100).toFixed(1);
  const colour = p.state === "failed" ? "#d0453a" : p.state === "done" ? "#2e8b57" : "#3b7dd8";
  const teaching =
    p.rngMode === "seeded" ? ` <span style="color:#c98a10;font-weight:600">⚠ ${esc(p.label ?? "teaching mode — not private")}</span>` : "";
  return (
    `<div style="font-weight:600;margin-bottom:4px">${esc(p.title ?? p.task)}${teaching}</div>` +
    `<div role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}" ` +
    `style="height:8px;border-radius:4px;background:rgba(127,127,127,0.18);overflow:hidden">` +
    `<div style="height:100%;width:${pct}%;background:${colour}"></div></div>` +
    `<div style="opacity:0.75;margin-top:4px;overflow-wrap:anywhere">${esc(progressStatusLine(p))}</div>`
  );
}
