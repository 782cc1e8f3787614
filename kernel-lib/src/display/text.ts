/**
 * `text/plain` fallback for cleanroom-lab payloads: what a terminal, `jupyter console`, a
 * kernel without rich display or a diff of an executed notebook shows. Aligned columns,
 * glyphs instead of colour, no trailing spaces.
 */
import { progressText } from "./progress-view.js";
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

/** Aligned columns; `right[i]` right-aligns column i (numbers), `foot` is a last row under a rule. */
function table(head: string[], rows: string[][], right: boolean[] = [], foot?: string[]): string[] {
  const all = foot ? [...rows, foot] : rows;
  const w = head.map((h, i) => Math.max(h.length, ...all.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (right[i] ? c.padStart(w[i]!) : c.padEnd(w[i]!)))
      .join("  ")
      .trimEnd();
  const rule = w.map((n) => "─".repeat(n)).join("  ");
  return [line(head), rule, ...rows.map(line), ...(foot ? [rule, line(foot)] : [])].map((l) => "  " + l);
}
function gauge(frac: number, width = 20): string {
  const n = Math.round(frac * width);
  return `[${"█".repeat(n)}${"░".repeat(width - n)}]`;
}
function st(s: string): string {
  return `${STATUS_GLYPH[s] ?? ""} ${s}`.trim();
}
function title(t: string, p: CleanRoomPayload): string[] {
  const out = [p.title ?? t];
  if (p.rngMode === "seeded") out.push(`⚠ ${p.label ?? "teaching mode — not private"}`);
  return out;
}

function budgetText(p: PayloadOf<"budget">): string[] {
  const out = title(`Privacy budget — room ${p.roomId}`, p);
  if (p.budgets.length === 0) out.push("  no budgets");
  for (const b of p.budgets) {
    const u = unitSymbol(b.unit);
    out.push(`${b.scope} · ${b.subject} (${b.accountant})`);
    out.push(
      `  ${gauge(spentFraction(b.spent, b.total))} spent ${u} ${fmtNum(b.spent)} · remaining ${u} ${fmtNum(b.remaining)} · total ${u} ${fmtNum(b.total)}`,
    );
    for (const x of b.buys ?? []) out.push(`  buys ${fmtNum(x.count)} × ${x.name} (${x.perQuery} each)`);
    if (b.refresh)
      out.push(`  ⚠ refreshes ${b.refresh.policy} · lifetime spent ${u} ${fmtNum(b.lifetimeSpent ?? b.spent)} — ${b.refresh.warning}`);
    if (b.history.length) {
      out.push(
        ...table(
          ["at", "template", "purpose", `cost ${u}`, "outcome"],
          b.history.map((h) => [h.at, h.templateName ?? shortHash(h.templateHash), h.purpose, fmtNum(h.cost), st(h.outcome)]),
        ),
      );
    }
  }
  return out;
}

function queryText(p: PayloadOf<"query">): string[] {
  const out = title("Clean-room query", p);
  const meta = [
    p.templateHash && `template ${shortHash(p.templateHash)}`,
    p.purpose && `purpose ${p.purpose}`,
    p.engine && `engine ${p.engine}`,
  ].filter(Boolean);
  if (meta.length) out.push(meta.join(" · "));
  if (p.refused) out.push(`✗ refused: ${p.refused.code} — ${p.refused.message}`);
  const negative = p.rows.some((r) => !r.suppressed && r.values.some((v, j) => p.columns[j]?.noisy && isNegativeCell(v)));
  if (p.rows.length) {
    const cell = (r: PayloadOf<"query">["rows"][number], v: (typeof r.values)[number], j: number) => {
      const pm = cellPlusMinus(r.plusMinus, j);
      const shown = (v === null ? "—" : typeof v === "number" ? fmtNum(v) : String(v)) + (pm ? ` ${pm}` : "");
      if (r.clamped?.some((c) => c.column === j)) return `${shown}‡`;
      return p.columns[j]?.noisy && isNegativeCell(v) ? `${shown}†` : shown;
    };
    const right = p.columns.map(
      (c, j) => c.type === "number" || c.type === "integer" || (!c.type && p.rows.some((r) => typeof r.values[j] === "number")),
    );
    const level = fmtPct(p.columns.find((c) => c.noise?.level !== undefined)?.noise?.level ?? 0.95, 0);
    const foot = p.columns.some((c) => c.noise?.halfWidth !== undefined)
      ? [...p.columns.map((c, j) => (j === 0 && !c.noisy ? `± (${level})` : plusMinus(c.noise))), p.columns[0]?.noisy ? `± (${level})` : ""]
      : undefined;
    out.push(
      ...table(
        [...p.columns.map((c) => c.name + (c.noisy ? "*" : "")), "status"],
        p.rows.map((r) => [
          ...r.values.map((v, j) => cell(r, v, j)),
          r.suppressed ? `⊘ suppressed: ${r.suppressed.rule} (threshold ${fmtNum(r.suppressed.threshold)})` : "released",
        ]),
        right,
        foot,
      ),
    );
    const n = p.rows.filter((r) => r.suppressed).length;
    if (n) out.push(`  ${n} of ${p.rows.length} groups suppressed`);
    if (p.rows.some((r) => r.plusMinus)) out.push(`  ${CELL_PM_NOTE}`);
    for (const r of p.rows)
      for (const c of r.clamped ?? []) {
        const row = r.values.filter((v, j) => !p.columns[j]?.noisy && v !== null).join("/") || "(all)";
        const released = typeof c.released === "number" ? fmtNum(c.released) : c.released;
        out.push(`  ‡ ${p.columns[c.column]?.name ?? c.column} in row ${row}: released ${released}, shown as 0`);
      }
  }
  if (p.noise && p.noise.mechanism !== "none") {
    const n = p.noise;
    const perColumn = p.columns.filter((c) => c.noise);
    out.push(
      [
        `noise ${n.mechanism}`,
        !perColumn.length && n.scale !== undefined && `scale ${fmtNum(n.scale)}`,
        !perColumn.length && n.sigma !== undefined && `σ ${fmtNum(n.sigma)}`,
        !perColumn.length && n.sensitivity !== undefined && `sensitivity ${fmtNum(n.sensitivity)}`,
        n.cost !== undefined && `cost ${unitSymbol(n.unit ?? "epsilon")} ${fmtNum(n.cost)}`,
      ]
        .filter(Boolean)
        .join(" · ") + (p.columns.some((c) => c.noisy) ? "  (* carries DP noise)" : ""),
    );
    for (const c of perColumn) out.push(`  ${c.name}: ${columnNoiseText(c.noise!)}`);
  }
  if (negative) out.push(`† ${NEGATIVE_NOISE_NOTE}`);
  if (p.postProcessing) out.push(`‡ ${clampNote(p.postProcessing.cells).replace(/ — hover.*$/, "")}`);
  if (p.trace?.length) {
    out.push("Why blocked:");
    out.push(
      ...table(
        ["step", "status", "reason"],
        p.trace.map((t) => [STEP_LABEL[t.step] ?? t.step, st(t.status), t.reason ?? ""]),
      ),
    );
  }
  return out;
}

function liftText(p: PayloadOf<"lift">): string[] {
  const lvl = fmtPct(p.level ?? 0.95, 0);
  const out = title("Lift study", p);
  const arm = (n: string, a: PayloadOf<"lift">["test"]) => [
    n,
    fmtNum(a.population),
    fmtNum(a.conversions),
    fmtPct(a.rate),
    fmtInterval(a.ci, true),
  ];
  out.push(...table(["group", "population", "converters", "rate", `${lvl} CI`], [arm("test", p.test), arm("control", p.control)]));
  out.push(`lift ${fmtPct(p.lift.estimate)}  ${lvl} CI ${fmtInterval(p.lift.ci, true)}`);
  out.push(
    `noise share of variance ${fmtPct(p.noiseVarianceShare, 1)}` +
      (p.incrementalConversions ? ` · incremental converters ${fmtNum(p.incrementalConversions.estimate)}` : "") +
      (p.groundTruth ? ` · ground truth lift ${fmtPct(p.groundTruth.lift)}` : ""),
  );
  for (const f of p.flags) out.push(`${f.severity === "warning" ? "⚠" : "ℹ"} ${f.message} (${f.code})`);
  return out;
}

function psiText(p: PayloadOf<"psi">): string[] {
  const out = title(`Private set intersection (${p.mode})`, p);
  out.push(
    `matched ${fmtNum(p.matchCount)} · ` +
      p.parties.map((q) => `${q.name} set ${fmtNum(q.setSize)} (${fmtPct(q.setSize ? p.matchCount / q.setSize : 0)} matched)`).join(" · "),
  );
  for (const q of p.parties) {
    out.push(`What ${q.name} saw (learned: ${q.learned}):`);
    out.push(
      ...(q.saw.length
        ? table(
            ["message", "from → to", "summary"],
            q.saw.map((m) => [m.message, `${m.from} → ${m.to}`, m.summary]),
          )
        : ["  no messages"]),
    );
  }
  return out;
}

function attestationText(p: PayloadOf<"attestation">): string[] {
  const out = title("Enclave attestation", p);
  out.push(p.verified ? "✓ verified" : "✗ not verified");
  out.push(
    ...table(
      ["check", "status", "reason"],
      p.checks.map((c) => [c.name, st(c.status), c.reason ?? ""]),
    ),
  );
  out.push(`key release: ${st(p.keyRelease.outcome)}${p.keyRelease.reason ? " — " + p.keyRelease.reason : ""}`);
  out.push("document:");
  out.push(
    ...table(
      ["field", "value"],
      p.document.map((d) => [d.name, d.value === null ? "—" : String(d.value)]),
    ),
  );
  return out;
}

function auditText(p: PayloadOf<"audit">): string[] {
  const v = p.verification;
  const out = title("Audit chain", p);
  out.push(
    v.ok
      ? `✓ chain verified (${p.entries.length} entries)`
      : `✗ chain broken at entry ${v.firstBadIndex ?? "?"}${v.reason ? " — " + v.reason : ""}`,
  );
  out.push(
    ...table(
      ["#", "at", "actor", "action", "template", "outcome", "hash"],
      p.entries.map((e) => [
        String(e.index),
        e.at,
        e.actor ?? "",
        e.action,
        e.template ? (e.template.name ?? shortHash(e.template.hash)) : "",
        e.outcome ?? "",
        shortHash(e.hash),
      ]),
    ),
  );
  if (p.heads.length) out.push(`signed heads: ${p.heads.map((h) => `#${h.index} ${h.verified ? "✓" : "✗"}`).join(", ")}`);
  return out;
}

function purposeText(p: PayloadOf<"purpose">): string[] {
  const out = title("Purpose grants and decisions", p);
  out.push(
    "Grants:",
    ...(p.grants.length
      ? table(
          ["party", "dataset", "purpose", "expires"],
          p.grants.map((g) => [g.party, g.dataset ?? "*", g.purpose, g.expires ?? ""]),
        )
      : ["  none"]),
  );
  out.push(
    "Decisions:",
    ...(p.decisions.length
      ? table(
          ["requester", "purpose", "decision", "reason"],
          p.decisions.map((d) => [d.requester, d.purpose, st(d.decision), d.reason]),
        )
      : ["  none"]),
  );
  return out;
}

function previewText(p: PayloadOf<"preview">): string[] {
  const out = title("Query preview — nothing charged", p);
  out.push(`template ${shortHash(p.templateHash)}`, `threshold: ${p.threshold.text}`);
  if (p.refused) out.push(`✗ approval and runs would be refused: ${p.refused.code} — ${p.refused.message}`);
  if (p.checks.length)
    out.push(
      ...table(
        ["uses", "column", "owner's rule", "verdict", "the rule allows"],
        p.checks.map((c) => [c.use, c.column, c.rule, st(c.allowed ? "allow" : "deny"), c.reason]),
      ),
    );
  const pct = `${Math.round(p.confidence * 1000) / 10}%`;
  if (p.plusMinus.length) {
    const pm = p.plusMinus.map((x) => `±${fmtNum(x.plusMinus)}`);
    const w = Math.max(...pm.map((s) => s.length), `± at ${pct}`.length);
    out.push(
      ...table(
        ["released number", `± at ${pct}`.padStart(w)],
        p.plusMinus.map((x, i) => [x.name, pm[i]!.padStart(w)]),
      ),
    );
  } else out.push("noise: none (threshold only: NOT differentially private)");
  out.push(`cost per run: ${p.cost ?? "none"}${p.runsLeft ? ` · ${p.runsLeft.runs} run(s) left for ${p.runsLeft.party}` : ""}`);
  return out;
}

function exportText(p: PayloadOf<"export">): string[] {
  const out = title(`Export — ${p.templateName}`, p);
  out.push(`template ${shortHash(p.templateHash)}`);
  for (const t of p.targets) {
    out.push("", `■ ${t.name}`);
    if (t.proof)
      out.push(
        `  ${t.proof.equal ? "✓" : "✗"} same answer as the lab on DuckDB (${t.proof.rows} rows, ${t.proof.suppressed} suppressed)` +
          (t.proof.difference ? `: ${t.proof.difference}` : ""),
      );
    out.push(`  files: ${t.files.map((f) => f.name).join(", ")}`, "  enforced differently from the lab:");
    out.push(...t.differences.map((d) => `   - ${d}`));
  }
  return out;
}

/**
 * Render a payload as plain text.
 *
 * @example
 * console.log(toText({ kind: "error", version: 1, code: "PARAM_INVALID", message: '"epsilon" expected > 0, got -1' }));
 */
export function toText(p: CleanRoomPayload): string {
  let lines: string[];
  switch (p.kind) {
    case "budget":
      lines = budgetText(p);
      break;
    case "query":
      lines = queryText(p);
      break;
    case "lift":
      lines = liftText(p);
      break;
    case "psi":
      lines = psiText(p);
      break;
    case "attestation":
      lines = attestationText(p);
      break;
    case "audit":
      lines = auditText(p);
      break;
    case "purpose":
      lines = purposeText(p);
      break;
    case "error":
      lines = [`✗ ${p.code}${p.field ? ` (field "${p.field}")` : ""}: ${p.message}`];
      break;
    case "progress":
      lines = progressText(p);
      break;
    case "preview":
      lines = previewText(p);
      break;
    case "export":
      lines = exportText(p);
      break;
  }
  return lines.map((l) => l.trimEnd()).join("\n");
}
