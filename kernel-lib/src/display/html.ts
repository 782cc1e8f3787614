/**
 * `text/html` fallback for cleanroom-lab payloads: self-contained markup with inline styles
 * only (no scripts, no classes that need a stylesheet), so a notebook reads well in nbconvert
 * HTML, on GitHub and in a Jupyter without the extension.
 *
 * Light/dark friendly: text colour is inherited; borders and fills are translucent greys;
 * the status colours (green/red/amber) are mid-tone and always paired with a glyph
 * (✓ ✗ –) so they read without colour too.
 *
 * Every string from the payload is escaped: a payload is untrusted display data.
 */
import type { CleanRoomPayload, PayloadOf } from "./schema.js";
import {
  NEGATIVE_NOISE_NOTE,
  CELL_PM_NOTE,
  cellPlusMinus,
  STATUS_GLYPH,
  STEP_LABEL,
  clampNote,
  columnNoiseText,
  fmtInterval,
  fmtNum,
  fmtPct,
  isNegativeCell,
  plusMinus,
  shortHash,
  spentFraction,
  unitSymbol,
} from "./format.js";
import { liftChartDataUri } from "./lift-svg.js";
import { progressHtml } from "./progress-view.js";

/** Escape text for HTML element content and double-quoted attributes. */
export function esc(s: unknown): string {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

const C = {
  border: "rgba(127,127,127,0.35)",
  fill: "rgba(127,127,127,0.18)",
  muted: "opacity:0.75",
  ok: "#2e8b57",
  bad: "#d0453a",
  warn: "#c98a10",
  accent: "#3b7dd8",
};
const ROOT =
  "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;" +
  `line-height:1.4;color:inherit;border:1px solid ${C.border};border-radius:6px;` +
  "padding:8px 12px;max-width:100%;overflow-x:auto;box-sizing:border-box";
const TABLE = "border-collapse:collapse;margin:6px 0;font-size:12px";
const TH = `text-align:left;padding:3px 8px;border-bottom:1px solid ${C.border};font-weight:600`;
// text-align is explicit: notebook stylesheets (JupyterLab, nbconvert) right-align every cell
const TD = `text-align:left;padding:3px 8px;border-bottom:1px solid ${C.border};vertical-align:top`;
const MONO = "font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px";

function statusColor(s: string): string {
  if (["ok", "allow", "released", "charged"].includes(s)) return C.ok;
  if (["refused", "failed", "deny", "denied"].includes(s)) return C.bad;
  return "inherit";
}
function status(s: string): string {
  return `<span style="color:${statusColor(s)};font-weight:600">${esc(STATUS_GLYPH[s] ?? "")} ${esc(s)}</span>`;
}
const NUM = "text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap";
/**
 * A table; `opts.num[j]` right-aligns column j with tabular numerals, `opts.headTitle[j]` is a
 * header tooltip, `opts.foot` (already-escaped cells) a footer row.
 */
function table(
  head: string[],
  rows: string[][],
  rowStyles: string[] = [],
  opts: { num?: boolean[]; headTitle?: (string | undefined)[]; foot?: string[] } = {},
): string {
  const al = (j: number) => (opts.num?.[j] ? `;${NUM}` : "");
  const h = head
    .map((c, j) => `<th style="${TH}${al(j)}"${opts.headTitle?.[j] ? ` title="${esc(opts.headTitle[j])}"` : ""}>${esc(c)}</th>`)
    .join("");
  const b = rows
    .map((r, i) => `<tr style="${rowStyles[i] ?? ""}">${r.map((c, j) => `<td style="${TD}${al(j)}">${c}</td>`).join("")}</tr>`)
    .join("");
  const f = opts.foot
    ? `<tfoot><tr>${opts.foot.map((c, j) => `<td style="${TD};${C.muted};white-space:nowrap${al(j)}">${c}</td>`).join("")}</tr></tfoot>`
    : "";
  return `<table style="${TABLE}"><thead><tr>${h}</tr></thead><tbody>${b}</tbody>${f}</table>`;
}
function header(title: string, p: CleanRoomPayload): string {
  const teaching =
    p.rngMode === "seeded"
      ? ` <span style="color:${C.warn};font-weight:600">⚠ ${esc(p.label ?? "teaching mode — not private")}</span>`
      : "";
  return `<div style="font-weight:600;font-size:14px;margin-bottom:4px">${esc(p.title ?? title)}${teaching}</div>`;
}
function wrap(p: CleanRoomPayload, body: string): string {
  return `<div data-cleanroom-kind="${esc(p.kind)}" style="${ROOT}">${body}</div>`;
}
function bar(frac: number, color: string): string {
  const pct = (frac * 100).toFixed(1);
  return (
    `<div style="background:${C.fill};height:10px;border-radius:5px;width:240px;max-width:100%;overflow:hidden">` +
    `<div style="width:${pct}%;height:100%;background:${color}"></div></div>`
  );
}
function kv(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => `<span style="margin-right:14px"><span style="${C.muted}">${esc(k)}</span> <b>${v}</b></span>`).join("");
}

function budgetHtml(p: PayloadOf<"budget">): string {
  const parts = p.budgets.map((b) => {
    const u = unitSymbol(b.unit);
    const f = spentFraction(b.spent, b.total);
    const color = f >= 1 ? C.bad : f >= 0.8 ? C.warn : C.accent;
    const hist =
      b.history.length === 0
        ? `<div style="${C.muted}">no charges yet</div>`
        : table(
            ["at", "template", "purpose", `cost (${u})`, "outcome"],
            b.history.map((h) => [
              esc(h.at),
              h.templateName
                ? `<span title="${esc(`template ${h.templateHash}`)}">${esc(h.templateName)}</span>`
                : `<code style="${MONO}" title="${esc(h.templateHash)}">${esc(shortHash(h.templateHash))}</code>`,
              esc(h.purpose),
              esc(fmtNum(h.cost)),
              status(h.outcome),
            ]),
          );
    return (
      `<div style="margin:8px 0"><div><b>${esc(b.scope)}</b> · ${esc(b.subject)} ` +
      `<span style="${C.muted}">(${esc(b.accountant)})</span></div>${bar(f, color)}` +
      `<div>${kv([
        ["spent", `${u} ${esc(fmtNum(b.spent))}`],
        ["remaining", `${u} ${esc(fmtNum(b.remaining))}`],
        ["total", `${u} ${esc(fmtNum(b.total))}`],
      ])}</div>` +
      (b.buys?.length
        ? `<div>${kv(b.buys.map((x): [string, string] => [`buys ${esc(x.name)}`, `${esc(fmtNum(x.count))} × (${esc(x.perQuery)} each)`]))}</div>`
        : "") +
      (b.refresh
        ? `<div style="color:${C.warn}">⚠ refreshes ${esc(b.refresh.policy)}${b.refresh.nextRefresh ? ` (next ${esc(b.refresh.nextRefresh)})` : ""}` +
          ` · lifetime spent ${u} ${esc(fmtNum(b.lifetimeSpent ?? b.spent))} — ${esc(b.refresh.warning)}</div>`
        : "") +
      `<details${b.history.length > 0 && b.history.length <= 8 ? " open" : ""}>` +
      `<summary style="cursor:pointer">history (${b.history.length})</summary>${hist}</details></div>`
    );
  });
  return header(`Privacy budget — room ${p.roomId}`, p) + (parts.length ? parts.join("") : `<div style="${C.muted}">no budgets</div>`);
}

function traceHtml(trace: PayloadOf<"query">["trace"]): string {
  if (!trace || trace.length === 0) return "";
  return `<div style="margin-top:6px"><b>Why blocked</b>${table(
    ["step", "status", "reason"],
    trace.map((t) => [esc(STEP_LABEL[t.step] ?? t.step), status(t.status), esc(t.reason ?? "")]),
  )}</div>`;
}

function queryCellHtml(p: PayloadOf<"query">, r: PayloadOf<"query">["rows"][number], j: number): string {
  const v = r.values[j];
  const pm = cellPlusMinus(r.plusMinus, j);
  const shown =
    (v === null || v === undefined ? "—" : esc(typeof v === "number" ? fmtNum(v) : v)) +
    (pm ? ` <span style="${C.muted};font-size:85%">${esc(pm)}</span>` : "");
  const c = r.clamped?.find((x) => x.column === j);
  if (c) {
    const released = typeof c.released === "number" ? fmtNum(c.released) : c.released;
    return `<span title="${esc(`post-processing: released ${released}, clamped at 0`)}">${shown}<sup>‡</sup></span>`;
  }
  return p.columns[j]?.noisy && isNegativeCell(v) ? `${shown}<sup>†</sup>` : shown;
}

function queryHtml(p: PayloadOf<"query">): string {
  let out = header("Clean-room query", p);
  const meta: [string, string][] = [];
  if (p.templateHash) meta.push(["template", `<code style="${MONO}">${esc(shortHash(p.templateHash))}</code>`]);
  if (p.purpose) meta.push(["purpose", esc(p.purpose)]);
  if (p.engine) meta.push(["engine", esc(p.engine)]);
  if (meta.length) out += `<div>${kv(meta)}</div>`;
  if (p.refused) {
    out +=
      `<div style="color:${C.bad};font-weight:600;margin:6px 0">✗ refused: ${esc(p.refused.code)}</div>` +
      `<div>${esc(p.refused.message)}</div>`;
  }
  const negative = p.rows.some((r) => !r.suppressed && r.values.some((v, j) => p.columns[j]?.noisy && isNegativeCell(v)));
  if (p.columns.length && (p.rows.length || !p.refused)) {
    const head = [...p.columns.map((c) => c.name + (c.noisy ? " *" : "")), "status"];
    const styles: string[] = [];
    const rows = p.rows.map((r) => {
      styles.push(r.suppressed ? `background:${C.fill};${C.muted}` : "");
      const cells = r.values.map((_, j) => queryCellHtml(p, r, j));
      const st = r.suppressed
        ? `<span style="color:${C.warn};font-weight:600">⊘ suppressed</span> ` +
          `<span style="${C.muted}">${esc(r.suppressed.rule)} (threshold ${esc(fmtNum(r.suppressed.threshold))})` +
          `${r.suppressed.reason ? ": " + esc(r.suppressed.reason) : ""}</span>`
        : "released";
      return [...cells, st];
    });
    const num = p.columns.map(
      (c, j) => c.type === "number" || c.type === "integer" || (!c.type && p.rows.some((r) => typeof r.values[j] === "number")),
    );
    const level = fmtPct(p.columns.find((c) => c.noise?.level !== undefined)?.noise?.level ?? 0.95, 0);
    const foot = p.columns.some((c) => c.noise?.halfWidth !== undefined)
      ? [
          ...p.columns.map((c, j) => (j === 0 && !c.noisy ? `± (${level})` : esc(plusMinus(c.noise)))),
          p.columns[0]?.noisy ? `± (${level})` : "",
        ]
      : undefined;
    const headTitle = p.columns.map((c) => (c.noise ? `${p.noise?.mechanism ?? "noise"}: ${columnNoiseText(c.noise)}` : undefined));
    out += table(head, rows, styles, { num, headTitle, ...(foot ? { foot } : {}) });
    const nSup = p.rows.filter((r) => r.suppressed).length;
    if (nSup) out += `<div style="${C.muted}">${nSup} of ${p.rows.length} groups suppressed</div>`;
    if (p.rows.some((r) => r.plusMinus)) out += `<div style="${C.muted}">${esc(CELL_PM_NOTE)}</div>`;
  }
  if (p.noise && p.noise.mechanism !== "none") {
    const n = p.noise;
    const perColumn = p.columns.filter((c) => c.noise);
    const bits: [string, string][] = [["noise", esc(n.mechanism)]];
    if (!perColumn.length && n.scale !== undefined) bits.push(["scale", esc(fmtNum(n.scale))]);
    if (!perColumn.length && n.sigma !== undefined) bits.push(["σ", esc(fmtNum(n.sigma))]);
    if (!perColumn.length && n.sensitivity !== undefined) bits.push(["sensitivity", esc(fmtNum(n.sensitivity))]);
    if (n.cost !== undefined) bits.push(["cost", `${unitSymbol(n.unit ?? "epsilon")} ${esc(fmtNum(n.cost))}`]);
    out += `<div style="margin-top:4px">${kv(bits)}</div>`;
    for (const c of perColumn) out += `<div style="${C.muted}"><b>${esc(c.name)}</b> — ${esc(columnNoiseText(c.noise!))}</div>`;
    if (p.columns.some((c) => c.noisy)) out += `<div style="${C.muted}">* carries DP noise</div>`;
  }
  if (negative) out += `<div style="${C.muted};margin-top:4px">† ${esc(NEGATIVE_NOISE_NOTE)}</div>`;
  if (p.postProcessing) out += `<div style="color:${C.warn};margin-top:4px">‡ ${esc(clampNote(p.postProcessing.cells))}</div>`;
  return out + traceHtml(p.trace);
}

function liftHtml(p: PayloadOf<"lift">): string {
  const lvl = fmtPct(p.level ?? 0.95, 0);
  const arm = (name: string, a: PayloadOf<"lift">["test"]) => [
    esc(name),
    esc(fmtNum(a.population)),
    esc(fmtNum(a.conversions)),
    esc(fmtPct(a.rate)),
    esc(fmtInterval(a.ci, true)),
  ];
  let out = header("Lift study", p);
  // an <img> data URI: nbconvert's HTML export and GitHub strip inline SVG and scripts
  const alt = esc(`Conversion rate by group and lift, ${lvl} CI`);
  out += `<div style="margin:6px 0"><img alt="${alt}" src="${liftChartDataUri(p)}" style="max-width:100%;height:auto"></div>`;
  out += table(
    ["group", "population", "converters", "rate", `${lvl} CI`],
    [arm("test (exposed)", p.test), arm("control (holdout)", p.control)],
  );
  out +=
    `<div style="font-size:15px;margin:4px 0">lift <b>${esc(fmtPct(p.lift.estimate))}</b> ` +
    `<span style="${C.muted}">${lvl} CI ${esc(fmtInterval(p.lift.ci, true))}</span></div>`;
  const meta: [string, string][] = [["noise share of variance", esc(fmtPct(p.noiseVarianceShare, 1))]];
  if (p.incrementalConversions) meta.push(["incremental converters", esc(fmtNum(p.incrementalConversions.estimate))]);
  if (p.groundTruth) meta.push(["ground truth lift", esc(fmtPct(p.groundTruth.lift))]);
  out += `<div>${kv(meta)}</div>`;
  for (const f of p.flags) {
    out +=
      `<div style="color:${f.severity === "warning" ? C.warn : "inherit"}">${f.severity === "warning" ? "⚠" : "ℹ"} ${esc(f.message)} ` +
      `<span style="${C.muted}">(${esc(f.code)})</span></div>`;
  }
  return out;
}

function psiHtml(p: PayloadOf<"psi">): string {
  let out = header(`Private set intersection (${p.mode})`, p);
  // one match rate per party: matched / that party's own set (the smaller-set rate alone misleads)
  out += `<div>${kv([
    ["matched", esc(fmtNum(p.matchCount))],
    ...p.parties.map((q): [string, string] => [
      `${q.name} set`,
      `${esc(fmtNum(q.setSize))} (${esc(fmtPct(q.setSize ? p.matchCount / q.setSize : 0))} matched)`,
    ]),
  ])}</div>`;
  for (const q of p.parties) {
    out +=
      `<div style="margin-top:6px"><b>What ${esc(q.name)} saw</b> — learned: ${esc(q.learned)}` +
      (q.saw.length
        ? table(
            ["message", "from → to", "summary", "bytes"],
            q.saw.map((m) => [
              `<code style="${MONO}">${esc(m.message)}</code>`,
              `${esc(m.from)} → ${esc(m.to)}`,
              esc(m.summary),
              esc(fmtNum(m.bytes)),
            ]),
          )
        : `<div style="${C.muted}">no messages</div>`) +
      "</div>";
  }
  return out;
}

function attestationHtml(p: PayloadOf<"attestation">): string {
  let out = header("Enclave attestation", p);
  out += `<div style="font-weight:600;color:${p.verified ? C.ok : C.bad}">${p.verified ? "✓ verified" : "✗ not verified"}</div>`;
  out += table(
    ["check", "status", "reason"],
    p.checks.map((c) => [esc(c.name), status(c.status), esc(c.reason ?? "")]),
  );
  out += `<div>key release: ${status(p.keyRelease.outcome)}${p.keyRelease.reason ? ` <span style="${C.muted}">${esc(p.keyRelease.reason)}</span>` : ""}</div>`;
  out +=
    `<details><summary style="cursor:pointer">document (${p.document.length} fields)</summary>` +
    table(
      ["field", "value"],
      p.document.map((d) => [
        esc(d.name),
        `<code style="${MONO};word-break:break-all">${esc(d.value === null ? "—" : String(d.value))}</code>`,
      ]),
    ) +
    "</details>";
  return out;
}

function auditHtml(p: PayloadOf<"audit">): string {
  const v = p.verification;
  let out = header("Audit chain", p);
  out +=
    `<div style="font-weight:600;color:${v.ok ? C.ok : C.bad}">` +
    `${v.ok ? `✓ chain verified (${p.entries.length} entries)` : `✗ chain broken at entry ${esc(v.firstBadIndex ?? "?")}`}` +
    `${v.reason ? ` <span style="font-weight:400">${esc(v.reason)}</span>` : ""}</div>`;
  const styles = p.entries.map((e) =>
    !v.ok && v.firstBadIndex !== null && e.index >= v.firstBadIndex ? `background:rgba(208,69,58,0.15)` : "",
  );
  out += table(
    ["#", "at", "actor", "action", "template", "outcome", "hash"],
    p.entries.map((e) => [
      esc(e.index),
      esc(e.at),
      esc(e.actor ?? ""),
      esc(e.action) + (e.details ? ` <span style="${C.muted}">${esc(e.details)}</span>` : ""),
      !e.template
        ? ""
        : e.template.name
          ? `<span title="${esc(`template ${e.template.hash}`)}">${esc(e.template.name)}</span>`
          : `<code style="${MONO}" title="${esc(e.template.hash)}">${esc(shortHash(e.template.hash))}</code>`,
      esc(e.outcome ?? ""),
      `<code style="${MONO}">${esc(shortHash(e.hash))}</code>`,
    ]),
    styles,
  );
  if (p.heads.length) {
    out +=
      `<div><b>Signed heads</b></div>` +
      table(
        ["at entry", "hash", "signature"],
        p.heads.map((h) => [esc(h.index), `<code style="${MONO}">${esc(shortHash(h.hash))}</code>`, status(h.verified ? "ok" : "failed")]),
      );
  }
  return out;
}

function purposeHtml(p: PayloadOf<"purpose">): string {
  let out = header("Purpose grants and decisions", p);
  out +=
    `<div><b>Grants</b></div>` +
    (p.grants.length
      ? table(
          ["party", "dataset", "purpose", "data uses", "expires", "status"],
          p.grants.map((g) => [
            esc(g.party),
            esc(g.dataset ?? "*"),
            `<code style="${MONO}">${esc(g.purpose)}</code>`,
            esc((g.dataUses ?? []).join(", ")),
            esc(g.expires ?? ""),
            esc(g.status ?? ""),
          ]),
        )
      : `<div style="${C.muted}">none</div>`);
  out +=
    `<div><b>Decisions</b></div>` +
    (p.decisions.length
      ? table(
          ["requester", "purpose", "dataset", "decision", "reason"],
          p.decisions.map((d) => [
            esc(d.requester),
            `<code style="${MONO}">${esc(d.purpose)}</code>`,
            esc(d.dataset ?? ""),
            status(d.decision),
            esc(d.reason),
          ]),
        )
      : `<div style="${C.muted}">none</div>`);
  return out;
}

function errorHtml(p: PayloadOf<"error">): string {
  return (
    `<div style="color:${C.bad};font-weight:600">✗ ${esc(p.code)}${p.field ? ` <span style="font-weight:400">(field "${esc(p.field)}")</span>` : ""}</div>` +
    `<div style="white-space:pre-wrap">${esc(p.message)}</div>`
  );
}

function previewHtml(p: PayloadOf<"preview">): string {
  let out = header("Query preview — nothing charged", p);
  out += `<div>${kv([["template", `<code style="${MONO}">${esc(shortHash(p.templateHash))}</code>`]])}</div>`;
  out += `<div style="margin:6px 0"><b>Threshold</b> ${esc(p.threshold.text)}</div>`;
  if (p.refused)
    out +=
      `<div style="color:${C.bad};font-weight:600;margin:6px 0">✗ approval and runs would be refused: ${esc(p.refused.code)}</div>` +
      `<div>${esc(p.refused.message)}</div>`;
  if (p.checks.length)
    out += table(
      ["uses", "column", "owner's rule", "verdict", "the rule allows"],
      p.checks.map((c) => [
        esc(c.use),
        `<code style="${MONO}">${esc(c.column)}</code>`,
        esc(c.rule),
        status(c.allowed ? "allow" : "deny"),
        esc(c.reason),
      ]),
    );
  const pct = `${Math.round(p.confidence * 1000) / 10}%`;
  if (p.plusMinus.length)
    out += table(
      ["released number", `± at ${pct}`],
      p.plusMinus.map((x) => [esc(x.name), `<span style="display:block;text-align:right">±${esc(fmtNum(x.plusMinus))}</span>`]),
    );
  else out += `<div style="${C.muted}">no noise: threshold only, NOT differentially private</div>`;
  out += `<div>${kv([
    ["cost per run", esc(p.cost ?? "none")],
    ...(p.runsLeft ? ([["runs left", `${esc(p.runsLeft.runs)} for ${esc(p.runsLeft.party)}`]] as [string, string][]) : []),
  ])}</div>`;
  return out;
}

function exportHtml(p: PayloadOf<"export">): string {
  let out = header(`Export — ${p.templateName}`, p);
  out += `<div>${kv([["template", `<code style="${MONO}">${esc(shortHash(p.templateHash))}</code>`]])}</div>`;
  const col = (t: PayloadOf<"export">["targets"][number]) =>
    `<div style="flex:1 1 0;min-width:260px;border:1px solid ${C.border};border-radius:6px;padding:6px">` +
    `<div style="font-weight:600">${esc(t.name)}</div>` +
    (t.proof
      ? `<div style="color:${t.proof.equal ? C.ok : C.bad}">${t.proof.equal ? "✓" : "✗"} same answer as the lab on DuckDB ` +
        `(${esc(t.proof.rows)} rows, ${esc(t.proof.suppressed)} suppressed)${t.proof.difference ? `: ${esc(t.proof.difference)}` : ""}</div>`
      : "") +
    t.files
      .map(
        (f) =>
          `<details><summary><code style="${MONO}">${esc(f.name)}</code></summary>` +
          `<pre style="${MONO};white-space:pre-wrap;max-height:24em;overflow:auto">${esc(f.text)}</pre></details>`,
      )
      .join("") +
    `<div style="margin-top:4px"><b>Enforced differently from the lab</b><ul style="margin:2px 0;padding-left:18px">` +
    t.differences.map((d) => `<li>${esc(d)}</li>`).join("") +
    `</ul></div>` +
    `<details><summary>DuckDB shims of the proof</summary><ul>${t.shims.map((s) => `<li>${esc(s)}</li>`).join("")}</ul></details>` +
    `</div>`;
  out += `<div style="display:flex;gap:8px;align-items:flex-start;flex-wrap:wrap">${p.targets.map(col).join("")}</div>`;
  return out;
}

/**
 * Render a payload as self-contained HTML (inline styles, no script).
 *
 * @example
 * const html = toHtml({ kind: "error", version: 1, code: "BUDGET_EXCEEDED", message: "Requested ε 1" });
 */
export function toHtml(p: CleanRoomPayload): string {
  switch (p.kind) {
    case "budget":
      return wrap(p, budgetHtml(p));
    case "query":
      return wrap(p, queryHtml(p));
    case "lift":
      return wrap(p, liftHtml(p));
    case "psi":
      return wrap(p, psiHtml(p));
    case "attestation":
      return wrap(p, attestationHtml(p));
    case "audit":
      return wrap(p, auditHtml(p));
    case "purpose":
      return wrap(p, purposeHtml(p));
    case "error":
      return wrap(p, errorHtml(p));
    case "progress":
      return wrap(p, progressHtml(p, esc));
    case "preview":
      return wrap(p, previewHtml(p));
    case "export":
      return wrap(p, exportHtml(p));
  }
}
