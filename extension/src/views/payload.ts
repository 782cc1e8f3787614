/**
 * Pure view functions: one validated cleanroom-lab payload → a DOM tree, plus the Vega-Lite
 * charts the widget glue should embed (vega-embed is loaded lazily by the renderer, so these
 * functions run under any DOM, e.g. happy-dom in unit tests).
 *
 * Styling is by class (style/base.css) on JupyterLab's CSS variables, so views follow the
 * light/dark theme. Every payload string goes through text nodes.
 */
import type { CleanRoomPayload, PayloadOf } from "@cleanroom-lab/kernel/dist/display/schema.js";
import {
  NEGATIVE_NOISE_NOTE,
  CELL_PM_NOTE,
  cellPlusMinus,
  STEP_LABEL,
  clampNote,
  columnNoiseText,
  fmtInterval,
  fmtNum,
  fmtPct,
  isNegativeCell,
  plusMinus,
  spentFraction,
  unitSymbol,
} from "@cleanroom-lab/kernel/dist/display/format.js";
import { liftChartSpec } from "@cleanroom-lab/kernel/dist/display/vegalite.js";
import { breakable, h, hash, kv, status, table, templateRef, type Child } from "./dom.js";
import { progressView } from "./progress.js";

/** A chart to embed: the host element (inside `node`) and its Vega-Lite spec. */
export interface ChartSlot {
  host: HTMLElement;
  spec: object;
}
export interface View {
  node: HTMLElement;
  charts: ChartSlot[];
}

function header(title: string, p: CleanRoomPayload): HTMLElement {
  return h(
    "div",
    { class: "crl-header" },
    h("span", { class: "crl-title" }, p.title ?? title),
    p.rngMode === "seeded"
      ? h(
          "span",
          { class: "crl-teaching", title: "seeded randomness: reproducible, not private" },
          `⚠ ${p.label ?? "teaching mode — not private"}`,
        )
      : null,
  );
}

/**
 * The gauge of one budget: bar + spent/remaining/total, with data attributes for tests.
 *
 * @example
 * budgetGauge(payload.budgets[0])
 */
export function budgetGauge(b: PayloadOf<"budget">["budgets"][number]): HTMLElement {
  const u = unitSymbol(b.unit);
  const f = spentFraction(b.spent, b.total);
  const level = f >= 1 ? "exhausted" : f >= 0.8 ? "low" : "ok";
  return h(
    "div",
    { class: "crl-gauge", "data-scope": b.scope, "data-subject": b.subject, "data-level": level },
    h(
      "div",
      { class: "crl-gauge-label" },
      h("b", {}, b.scope),
      " · ",
      breakable(b.subject),
      " ",
      h("span", { class: "crl-muted" }, `(${b.accountant})`),
    ),
    h(
      "div",
      {
        class: "crl-gauge-bar",
        role: "meter",
        "aria-valuemin": 0,
        "aria-valuemax": b.total,
        "aria-valuenow": b.spent,
        "aria-label": `${u} spent of ${b.subject} budget`,
      },
      h("div", { class: "crl-gauge-fill", style: `width:${(f * 100).toFixed(1)}%` }),
    ),
    h(
      "div",
      { class: "crl-gauge-numbers" },
      kv("spent", `${u} ${fmtNum(b.spent)}`, { "data-field": "spent" }),
      kv("remaining", `${u} ${fmtNum(b.remaining)}`, { "data-field": "remaining" }),
      kv("total", `${u} ${fmtNum(b.total)}`, { "data-field": "total" }),
    ),
  );
}

function budgetView(p: PayloadOf<"budget">): Child[] {
  return [
    header(`Privacy budget — room ${p.roomId}`, p),
    ...(p.budgets.length === 0
      ? [h("div", { class: "crl-muted" }, "no budgets")]
      : p.budgets.map((b) => {
          const u = unitSymbol(b.unit);
          // Short histories are shown open: the charges are the point of the view.
          const details = h(
            "details",
            { class: "crl-history", open: b.history.length > 0 && b.history.length <= 8 },
            h("summary", {}, `history (${b.history.length})`),
            b.history.length === 0
              ? h("div", { class: "crl-muted" }, "no charges yet")
              : table(
                  ["at", "template", "purpose", `cost (${u})`, "outcome"],
                  b.history.map((c) => [
                    c.at,
                    templateRef({ name: c.templateName, hash: c.templateHash }),
                    c.purpose,
                    fmtNum(c.cost),
                    status(c.outcome),
                  ]),
                  (i) => (b.history[i]!.outcome === "refused" ? "crl-row-refused" : undefined),
                ),
          );
          const refresh = b.refresh
            ? h(
                "div",
                { class: "crl-flag crl-flag-warning", "data-field": "refresh" },
                `⚠ refreshes ${b.refresh.policy}${b.refresh.nextRefresh ? ` (next ${b.refresh.nextRefresh})` : ""}` +
                  ` · lifetime spent ${u} ${fmtNum(b.lifetimeSpent ?? b.spent)} — ${b.refresh.warning}`,
              )
            : null;
          const buys = b.buys?.length
            ? h(
                "div",
                { class: "crl-meta", "data-field": "buys" },
                ...b.buys.map((x) => kv(`buys ${x.name}`, `${fmtNum(x.count)} × (${x.perQuery} each)`)),
              )
            : null;
          return h("div", { class: "crl-budget" }, budgetGauge(b), buys, refresh, details);
        })),
  ];
}

function traceView(trace: PayloadOf<"query">["trace"]): Child {
  if (!trace || trace.length === 0) return null;
  return h(
    "div",
    { class: "crl-trace" },
    h("div", { class: "crl-subtitle" }, "Why blocked"),
    h(
      "ol",
      { class: "crl-steps" },
      ...trace.map((t) =>
        h(
          "li",
          { class: `crl-step crl-step-${t.status}`, "data-step": t.step },
          status(t.status),
          " ",
          h("span", { class: "crl-step-name" }, STEP_LABEL[t.step] ?? t.step),
          t.reason ? h("span", { class: "crl-muted" }, ` — ${t.reason}`) : null,
        ),
      ),
    ),
  );
}

const isNumCol = (p: PayloadOf<"query">, j: number): boolean => {
  const c = p.columns[j];
  if (!c) return false;
  if (c.type === "number" || c.type === "integer") return true;
  return c.type === undefined && p.rows.some((r) => typeof r.values[j] === "number");
};

/** One cell of the query table: the value, a † on a negative noisy value, a ‡ on a clamped one. */
function queryCell(p: PayloadOf<"query">, r: PayloadOf<"query">["rows"][number], j: number): Child {
  const v = r.values[j];
  const text = v === null || v === undefined ? "—" : typeof v === "number" ? fmtNum(v) : String(v);
  const pm = cellPlusMinus(r.plusMinus, j);
  const shown: Child = pm ? h("span", {}, text, " ", h("span", { class: "crl-pm-cell crl-muted", "data-pm-cell": j }, pm)) : text;
  const clamped = r.clamped?.find((c) => c.column === j);
  if (clamped) {
    const released = typeof clamped.released === "number" ? fmtNum(clamped.released) : clamped.released;
    return h(
      "span",
      { class: "crl-clamped", "data-released": String(clamped.released), title: `post-processing: released ${released}, clamped at 0` },
      shown,
      h("sup", {}, "‡"),
    );
  }
  if (p.columns[j]?.noisy && isNegativeCell(v)) return h("span", { class: "crl-negative" }, shown, h("sup", {}, "†"));
  return shown;
}

function queryView(p: PayloadOf<"query">): Child[] {
  const out: Child[] = [header("Clean-room query", p)];
  const meta = [
    p.templateHash ? kv("template", hash(p.templateHash)) : null,
    p.purpose ? kv("purpose", p.purpose) : null,
    p.engine ? kv("engine", p.engine) : null,
  ];
  if (meta.some(Boolean)) out.push(h("div", { class: "crl-meta" }, ...meta));
  if (p.refused) out.push(h("div", { class: "crl-refused" }, h("b", {}, `✗ refused: ${p.refused.code}`), h("div", {}, p.refused.message)));
  const negative = p.rows.some((r) => !r.suppressed && r.values.some((v, j) => p.columns[j]?.noisy && isNegativeCell(v)));
  if (p.columns.length && (p.rows.length || !p.refused)) {
    const head = [...p.columns.map((c) => c.name + (c.noisy ? " *" : "")), "status"];
    const rows = p.rows.map((r) => [
      ...r.values.map((_, j) => queryCell(p, r, j)),
      r.suppressed
        ? h(
            "span",
            {
              class: "crl-suppressed-marker",
              "data-rule": r.suppressed.rule,
              "data-threshold": r.suppressed.threshold,
              title: r.suppressed.reason ?? "",
            },
            `⊘ suppressed: ${r.suppressed.rule} (threshold ${fmtNum(r.suppressed.threshold)})`,
          )
        : h("span", { class: "crl-muted" }, "released"),
    ]);
    const withPm = p.columns.some((c) => c.noise?.halfWidth !== undefined);
    const level = p.columns.find((c) => c.noise?.level !== undefined)?.noise?.level ?? 0.95;
    const foot = withPm
      ? [
          ...p.columns.map((c, j) =>
            j === 0 && !c.noisy
              ? h("span", { class: "crl-muted" }, `± (${fmtPct(level, 0)})`)
              : h("span", { "data-pm": c.name }, plusMinus(c.noise)),
          ),
          p.columns[0]?.noisy ? h("span", { class: "crl-muted" }, `± (${fmtPct(level, 0)})`) : "",
        ]
      : undefined;
    out.push(
      table(head, rows, (i) => (p.rows[i]!.suppressed ? "crl-row-suppressed" : undefined), {
        colClass: (j) => (isNumCol(p, j) ? "crl-num" : undefined),
        headTitle: (j) => {
          const c = p.columns[j];
          return c?.noise ? `${p.noise?.mechanism ?? "noise"}: ${columnNoiseText(c.noise)}` : undefined;
        },
        ...(foot ? { foot } : {}),
      }),
    );
    const n = p.rows.filter((r) => r.suppressed).length;
    if (n) out.push(h("div", { class: "crl-muted", "data-field": "suppressed-count" }, `${n} of ${p.rows.length} groups suppressed`));
    if (p.rows.some((r) => r.plusMinus)) out.push(h("div", { class: "crl-muted", "data-field": "cell-pm-note" }, CELL_PM_NOTE));
  }
  if (p.noise && p.noise.mechanism !== "none") {
    const n = p.noise;
    const perColumn = p.columns.filter((c) => c.noise);
    out.push(
      h(
        "div",
        { class: "crl-meta", "data-field": "noise" },
        kv("noise", n.mechanism),
        // payloads without per-column noise (older kernels) carry one scale for the whole query
        !perColumn.length && n.scale !== undefined ? kv("scale", fmtNum(n.scale)) : null,
        !perColumn.length && n.sigma !== undefined ? kv("σ", fmtNum(n.sigma)) : null,
        !perColumn.length && n.sensitivity !== undefined ? kv("sensitivity", fmtNum(n.sensitivity)) : null,
        n.cost !== undefined ? kv("cost", `${unitSymbol(n.unit ?? "epsilon")} ${fmtNum(n.cost)}`) : null,
        p.columns.some((c) => c.noisy) ? h("span", { class: "crl-muted" }, "* carries DP noise") : null,
      ),
    );
    if (perColumn.length)
      out.push(
        h(
          "ul",
          { class: "crl-noise-columns" },
          ...perColumn.map((c) => h("li", { "data-noise-column": c.name }, h("b", {}, c.name), ` — ${columnNoiseText(c.noise!)}`)),
        ),
      );
  }
  if (negative) out.push(h("div", { class: "crl-footnote", "data-field": "negative-note" }, `† ${NEGATIVE_NOISE_NOTE}`));
  if (p.postProcessing) out.push(h("div", { class: "crl-footnote", "data-field": "clamp-note" }, `‡ ${clampNote(p.postProcessing.cells)}`));
  out.push(traceView(p.trace));
  return out;
}

function liftView(p: PayloadOf<"lift">, charts: ChartSlot[]): Child[] {
  const lvl = fmtPct(p.level ?? 0.95, 0);
  const arm = (n: string, a: PayloadOf<"lift">["test"]) => [
    n,
    fmtNum(a.population),
    fmtNum(a.conversions),
    fmtPct(a.rate),
    fmtInterval(a.ci, true),
  ];
  const host = h("div", { class: "crl-chart", "data-chart": "lift" });
  charts.push({ host, spec: liftChartSpec(p) });
  return [
    header("Lift study", p),
    h(
      "div",
      { class: "crl-lift-headline" },
      "lift ",
      h("b", { "data-field": "lift" }, fmtPct(p.lift.estimate)),
      h("span", { class: "crl-muted" }, ` ${lvl} CI ${fmtInterval(p.lift.ci, true)}`),
    ),
    host,
    table(["group", "population", "converters", "rate", `${lvl} CI`], [arm("test (exposed)", p.test), arm("control (holdout)", p.control)]),
    h(
      "div",
      { class: "crl-meta" },
      kv("noise share of variance", fmtPct(p.noiseVarianceShare, 1), { "data-field": "noise-share" }),
      p.incrementalConversions ? kv("incremental converters", fmtNum(p.incrementalConversions.estimate)) : null,
      p.groundTruth ? kv("ground truth lift", fmtPct(p.groundTruth.lift)) : null,
    ),
    ...p.flags.map((f) =>
      h(
        "div",
        { class: `crl-flag crl-flag-${f.severity}` },
        `${f.severity === "warning" ? "⚠" : "ℹ"} ${f.message} `,
        h("span", { class: "crl-muted" }, `(${f.code})`),
      ),
    ),
  ];
}

function psiView(p: PayloadOf<"psi">): Child[] {
  return [
    header(`Private set intersection (${p.mode})`, p),
    h(
      "div",
      { class: "crl-meta" },
      kv("matched", fmtNum(p.matchCount), { "data-field": "match-count" }),
      kv("match rate (smaller set)", fmtPct(p.matchRate), { "data-field": "match-rate" }),
      ...p.parties.map((q) => kv(`${q.name} set`, `${fmtNum(q.setSize)} (${fmtPct(q.setSize ? p.matchCount / q.setSize : 0)} matched)`)),
    ),
    ...p.parties.map((q) =>
      h(
        "div",
        { class: "crl-party", "data-party": q.name },
        h("div", { class: "crl-subtitle" }, `What ${q.name} saw`),
        h("div", { class: "crl-muted" }, `learned: ${q.learned}`),
        q.saw.length
          ? table(
              ["message", "from → to", "summary", "bytes"],
              q.saw.map((m) => [h("code", {}, m.message), `${m.from} → ${m.to}`, m.summary, fmtNum(m.bytes)]),
            )
          : h("div", { class: "crl-muted" }, "no messages"),
      ),
    ),
  ];
}

function attestationView(p: PayloadOf<"attestation">): Child[] {
  return [
    header("Enclave attestation", p),
    h(
      "div",
      { class: `crl-verdict crl-verdict-${p.verified ? "ok" : "bad"}`, "data-field": "verified" },
      p.verified ? "✓ verified" : "✗ not verified",
    ),
    h(
      "ul",
      { class: "crl-checklist" },
      ...p.checks.map((c) =>
        h(
          "li",
          { "data-check": c.name },
          status(c.status),
          ` ${c.name}`,
          c.reason ? h("span", { class: "crl-muted" }, ` — ${c.reason}`) : null,
        ),
      ),
    ),
    h(
      "div",
      { class: "crl-meta" },
      kv("key release", status(p.keyRelease.outcome)),
      p.keyRelease.reason ? h("span", { class: "crl-muted" }, p.keyRelease.reason) : null,
    ),
    h(
      "details",
      { class: "crl-document", open: true },
      h("summary", {}, `document (${p.document.length} fields)`),
      table(
        ["field", "value"],
        p.document.map((d) => [d.name, h("code", { class: "crl-wrap" }, d.value === null ? "—" : String(d.value))]),
      ),
    ),
  ];
}

function auditView(p: PayloadOf<"audit">): Child[] {
  const v = p.verification;
  const bad = (i: number) => !v.ok && v.firstBadIndex !== null && p.entries[i]!.index >= v.firstBadIndex;
  return [
    header("Audit chain", p),
    h(
      "div",
      { class: `crl-verdict crl-verdict-${v.ok ? "ok" : "bad"}`, "data-field": "chain" },
      v.ok ? `✓ chain verified (${p.entries.length} entries)` : `✗ chain broken at entry ${v.firstBadIndex ?? "?"}`,
      v.reason ? h("span", { class: "crl-muted" }, ` — ${v.reason}`) : null,
    ),
    table(
      ["#", "at", "actor", "action", "template", "outcome", "hash"],
      p.entries.map((e) => [
        String(e.index),
        e.at,
        e.actor ?? "",
        e.details ? h("span", {}, e.action, h("span", { class: "crl-muted" }, ` ${e.details}`)) : e.action,
        e.template ? templateRef(e.template) : "",
        e.outcome ?? "",
        hash(e.hash),
      ]),
      (i) => (bad(i) ? "crl-row-bad" : undefined),
    ),
    p.heads.length
      ? h(
          "div",
          { class: "crl-heads" },
          h("div", { class: "crl-subtitle" }, "Signed heads"),
          table(
            ["at entry", "hash", "signature"],
            p.heads.map((x) => [String(x.index), hash(x.hash), status(x.verified ? "ok" : "failed")]),
          ),
        )
      : null,
  ];
}

function purposeView(p: PayloadOf<"purpose">): Child[] {
  return [
    header("Purpose grants and decisions", p),
    h("div", { class: "crl-subtitle" }, "Grants"),
    p.grants.length
      ? table(
          ["party", "dataset", "purpose", "data uses", "expires", "status"],
          p.grants.map((g) => [
            g.party,
            g.dataset ?? "*",
            h("code", {}, g.purpose),
            (g.dataUses ?? []).join(", "),
            g.expires ?? "",
            g.status ?? "",
          ]),
        )
      : h("div", { class: "crl-muted" }, "none"),
    h("div", { class: "crl-subtitle" }, "Decisions"),
    p.decisions.length
      ? table(
          ["requester", "purpose", "dataset", "decision", "reason"],
          p.decisions.map((d) => [d.requester, h("code", {}, d.purpose), d.dataset ?? "", status(d.decision), d.reason]),
        )
      : h("div", { class: "crl-muted" }, "none"),
  ];
}

function previewView(p: PayloadOf<"preview">): Child[] {
  const pct = `${Math.round(p.confidence * 1000) / 10}%`;
  return [
    header("Query preview — nothing charged", p),
    h("div", { class: "crl-meta" }, kv("template", hash(p.templateHash))),
    h("div", { class: "crl-preview-threshold" }, h("b", {}, "Threshold "), p.threshold.text),
    p.refused
      ? h("div", { class: "crl-error-code" }, `✗ approval and runs would be refused: ${p.refused.code}`, h("div", {}, p.refused.message))
      : null,
    p.checks.length
      ? table(
          ["uses", "column", "owner's rule", "verdict", "the rule allows"],
          p.checks.map((c) => [c.use, h("code", {}, c.column), c.rule, status(c.allowed ? "allow" : "deny"), c.reason]),
        )
      : null,
    p.plusMinus.length
      ? table(
          ["released number", `± at ${pct}`],
          p.plusMinus.map((x) => [x.name, h("span", { class: "crl-num" }, `±${fmtNum(x.plusMinus)}`)]),
        )
      : h("div", { class: "crl-muted" }, "no noise: threshold only, NOT differentially private"),
    h(
      "div",
      { class: "crl-meta" },
      kv("cost per run", p.cost ?? "none"),
      p.runsLeft ? kv("runs left", `${p.runsLeft.runs} for ${p.runsLeft.party}`) : null,
    ),
  ];
}

function exportView(p: PayloadOf<"export">): Child[] {
  return [
    header(`Export — ${p.templateName}`, p),
    h("div", { class: "crl-meta" }, kv("template", hash(p.templateHash))),
    h(
      "div",
      { class: "crl-export-targets" },
      ...p.targets.map((t) =>
        h(
          "div",
          { class: "crl-export-target", "data-target": t.target },
          h("div", { class: "crl-subtitle" }, t.name),
          t.proof
            ? h(
                "div",
                { class: t.proof.equal ? "crl-ok" : "crl-error-code" },
                `${t.proof.equal ? "✓" : "✗"} same answer as the lab on DuckDB (${t.proof.rows} rows, ${t.proof.suppressed} suppressed)` +
                  (t.proof.difference ? `: ${t.proof.difference}` : ""),
              )
            : null,
          ...t.files.map((f) => h("details", {}, h("summary", {}, h("code", {}, f.name)), h("pre", { class: "crl-export-file" }, f.text))),
          h("div", {}, h("b", {}, "Enforced differently from the lab")),
          h("ul", {}, ...t.differences.map((d) => h("li", {}, d))),
          h("details", {}, h("summary", {}, "DuckDB shims of the proof"), h("ul", {}, ...t.shims.map((x) => h("li", {}, x)))),
        ),
      ),
    ),
  ];
}

function errorView(p: PayloadOf<"error">): Child[] {
  return [
    h("div", { class: "crl-error-code" }, `✗ ${p.code}`, p.field ? h("span", { class: "crl-muted" }, ` (field "${p.field}")`) : null),
    h("div", { class: "crl-error-message" }, p.message),
  ];
}

/**
 * Build the view of a validated payload.
 *
 * @example
 * const { node, charts } = renderPayload(parsed.payload);
 * host.appendChild(node);
 */
export function renderPayload(p: CleanRoomPayload): View {
  const charts: ChartSlot[] = [];
  let children: Child[];
  switch (p.kind) {
    case "budget":
      children = budgetView(p);
      break;
    case "query":
      children = queryView(p);
      break;
    case "lift":
      children = liftView(p, charts);
      break;
    case "psi":
      children = psiView(p);
      break;
    case "attestation":
      children = attestationView(p);
      break;
    case "audit":
      children = auditView(p);
      break;
    case "purpose":
      children = purposeView(p);
      break;
    case "error":
      children = errorView(p);
      break;
    case "progress":
      children = progressView(p);
      break;
    case "preview":
      children = previewView(p);
      break;
    case "export":
      children = exportView(p);
      break;
  }
  const node = h(
    "div",
    { class: `crl-view crl-kind-${p.kind}${p.kind === "error" ? " crl-error" : ""}`, "data-kind": p.kind },
    ...children,
  );
  return { node, charts };
}

/**
 * The box shown for display data that does not match the schema: never blank, never a crash.
 *
 * @example
 * invalidPayloadView('kind: Invalid input')
 */
export function invalidPayloadView(message: string): HTMLElement {
  return h(
    "div",
    { class: "crl-view crl-error crl-invalid", "data-kind": "invalid" },
    h("div", { class: "crl-error-code" }, "✗ unreadable cleanroom-lab output"),
    h(
      "div",
      { class: "crl-muted" },
      "This output does not match the application/vnd.cleanroom-lab.v1+json schema (is the kernel library newer than the extension?).",
    ),
    h("pre", { class: "crl-error-message" }, message),
  );
}
