/**
 * Template design helpers for notebooks: preview a query template before anyone approves or
 * runs it, and read exactly what a run cost from two budget reports.
 *
 * `previewTemplate` is a pure function of the template (plan data) and, optionally, the
 * parameters an analyst intends to pass: it lists the typed parameter slots and their
 * allowed ranges, the filters, dimensions and clamped aggregates, the threshold (preset
 * resolved), the per-quantity noise (sensitivity, scale, standard deviation and the exact
 * ±half-width at a confidence level from the discrete Laplace / Gaussian tail) and the
 * privacy cost — everything an owner reviews before approving the hash, and everything an
 * analyst needs to decide whether the answer will be accurate enough to be worth its budget.
 * Nothing is charged and no data is touched. `budgetSpent` and `sameCost` compare ledger
 * states exactly (rationals, no floats), so a notebook can assert "the budget went down by
 * exactly the template's cost".
 *
 * Threat model: none of its own — it reads only public plan data and ledger reports.
 * Spec: issue 4 (approved templates), issue 5 (cost before running, planning).
 */
import { invalid } from "../errors.js";
import {
  parseTemplate,
  templateCost,
  noiseParams,
  templateMinimum,
  THRESHOLD_PRESETS,
  type Template,
  type TemplateInput,
  type TemplateLike,
} from "./template.js";
import { costText, costToJson, type PrivacyCost, type PrivacyCostJson } from "../dp/accountant.js";
import { mechanism as lookupMechanism, type NoiseMechanism } from "../dp/registry.js";
import { ratFrom, ratSub, ratCompare, ratToDecimal, type Rational } from "../dp/rational.js";
import type { BudgetReport } from "../dp/planner.js";

/** One noised quantity of a template as an owner reviews it. */
export interface PreviewNoise {
  /** Aggregate name, or "units" for the distinct-unit count the threshold uses. */
  name: string;
  /** The sensitivity the mechanism is calibrated to (L1 for Laplace, squared L2 for Gaussian), as a decimal string. */
  sensitivity: string;
  /** The mechanism's noise parameter (Laplace scale, Gaussian σ²), as a decimal string. */
  scale: string;
  /** Standard deviation of the noise. */
  sd: number;
  /** Smallest n with P(|noise| > n) ≤ 1 − confidence (exact discrete tail). */
  plusMinus: number;
}

/** What `previewTemplate` returns: plain, JSON-able review data. */
export interface TemplatePreview {
  kind: "templatePreview";
  name: string;
  /** SHA-256 of the canonical template: what every owner approves. */
  hash: string;
  inputs: { role: "base" | "events"; owner: string; dataset: string; join?: string }[];
  /** Every owner of an input must approve the hash. */
  approvalsNeeded: string[];
  params: { name: string; type: string; allowed: string }[];
  filters: string[];
  groupBy: string[];
  aggregates: { name: string; fn: string; column?: string; bounds?: [number, number] }[];
  contribution: { maxRowsPerUnit: number; orderBy: string[] } | null;
  threshold: { minimum: number; preset: string | null; style: string };
  /** `mechanism`: display name of the registered mechanism (dp/registry.ts). */
  noise: { mechanism: string; confidence: number; perQuantity: PreviewNoise[] } | null;
  /** Cost of one run (null: threshold only, no DP claim). */
  cost: PrivacyCostJson | null;
  text: string;
}

/**
 * Smallest integer n with P(|X| > n) ≤ 1 − confidence for the noise of a registered
 * mechanism (a registry value, or its template/display name: "laplace" with scale t,
 * "gaussian" with σ², …), from its exact tail.
 *
 * @example noiseHalfWidth("laplace", "10", 0.95) // 30
 */
export function noiseHalfWidth(mechanism: NoiseMechanism | string, scale: Rational | string, confidence: number): number {
  const m = typeof mechanism === "string" ? lookupMechanism(mechanism, "mechanism") : lookupMechanism(mechanism?.templateName, "mechanism");
  if (typeof confidence !== "number" || !(confidence >= 0.5 && confidence < 1)) invalid("confidence", "number in [0.5, 1)", confidence);
  const s = ratFrom(scale as Rational, "scale");
  const tail = (k: number) => m.tail(k, s);
  const beta = 1 - confidence;
  let hi = 1;
  while (tail(hi) > beta) hi *= 2;
  let lo = 0;
  if (tail(0) <= beta) return 0;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (tail(mid) <= beta) hi = mid;
    else lo = mid;
  }
  return hi;
}

function operandText(v: Template["filters"][number]["value"]): string {
  if ("param" in v) return `{${v.param}}`;
  if ("column" in v) return v.column;
  return Array.isArray(v.literal) ? `[${v.literal.join(", ")}]` : JSON.stringify(v.literal);
}

/**
 * Review a template before approving or running it: slots, filters, aggregates, threshold,
 * noise per quantity (± at `confidence`) and the cost of one run. Validates `params` when
 * given (`PARAM_INVALID` naming the parameter), like a run would, but charges nothing.
 *
 * @example
 * const p = previewTemplate(liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.2" }), { startDay: 0, endDay: 27 });
 * console.log(p.text); p.cost?.text // "ε = 1"
 */
export function previewTemplate(
  template: TemplateInput | TemplateLike,
  params?: Record<string, unknown>,
  opts: { confidence?: number } = {},
): TemplatePreview {
  const t = parseTemplate(template);
  const confidence = opts.confidence ?? 0.95;
  if (typeof confidence !== "number" || !(confidence >= 0.5 && confidence < 1))
    invalid("opts.confidence", "number in [0.5, 1)", confidence);
  let cost: PrivacyCost | null;
  if (params !== undefined) cost = templateCost(t, params);
  else {
    const first = Object.fromEntries(
      Object.entries(t.params).map(([k, p]) => [k, p.type === "int" ? p.min : p.type === "enum" ? p.values[0] : [p.values[0]]]),
    );
    cost = templateCost(t, first);
  }
  const np = noiseParams(t);
  const perQuantity: PreviewNoise[] = (np ?? []).map((q) => {
    const variance = q.mechanism.variance(q.scale);
    return {
      name: q.name,
      sensitivity: q.sensitivity.toString(),
      scale: ratToDecimal(q.scale, 6),
      sd: Math.sqrt(variance),
      plusMinus: noiseHalfWidth(q.mechanism, q.scale, confidence),
    };
  });
  const m = t.threshold.minimum;
  const inputs: TemplatePreview["inputs"] = [{ role: "base", owner: t.base.owner, dataset: t.base.dataset }];
  if (t.events)
    inputs.push({ role: "events", owner: t.events.owner, dataset: t.events.dataset, join: `${t.events.join} on ${t.events.joinOn}` });
  const out: Omit<TemplatePreview, "text"> = {
    kind: "templatePreview",
    name: t.name,
    hash: t.hash,
    inputs,
    approvalsNeeded: [...new Set(inputs.map((i) => i.owner))].sort(),
    params: Object.entries(t.params).map(([name, p]) => ({
      name,
      type: p.type,
      allowed:
        p.type === "int"
          ? `integer in [${p.min}, ${p.max}]`
          : p.type === "enum"
            ? `one of ${p.values.join(", ")}`
            : `list of ${p.values.join(", ")}${p.maxItems ? ` (≤ ${p.maxItems})` : ""}`,
    })),
    filters: t.filters.map((f) => `${f.column} ${f.op} ${operandText(f.value)}`),
    groupBy: [...t.groupBy],
    aggregates: t.aggregates.map((a) => ({
      name: a.name,
      fn: a.fn,
      ...("column" in a ? { column: a.column, bounds: [a.bounds[0], a.bounds[1]] as [number, number] } : {}),
    })),
    contribution: t.contribution ? { maxRowsPerUnit: t.contribution.maxRowsPerUnit, orderBy: [...t.contribution.orderBy] } : null,
    threshold: { minimum: templateMinimum(t), preset: typeof m === "string" ? m : null, style: t.threshold.style },
    noise: np?.length ? { mechanism: np[0]!.mechanism.displayName, confidence, perQuantity } : null,
    cost: cost ? costToJson(cost) : null,
  };
  const unitsAs = t.aggregates.filter((a) => a.fn === "countUnits").map((a) => a.name);
  const L = [
    `Template "${out.name}"  hash ${out.hash.slice(0, 16)}…`,
    `  inputs: ${inputs.map((i) => `${i.owner}/${i.dataset}${i.join ? ` (${i.join})` : ""}`).join(" + ")}; approvals needed: ${out.approvalsNeeded.join(", ")}`,
    `  params: ${out.params.map((p) => `${p.name}: ${p.allowed}`).join("; ") || "none"}`,
    `  filters: ${out.filters.join(" AND ") || "none"}`,
    `  group by: ${out.groupBy.join(", ") || "(one row)"}`,
    `  aggregates:`,
    ...out.aggregates.map(
      (a) => `    ${a.name} = ${a.fn}${a.column ? `(${a.column}), each person's total clamped to [${a.bounds![0]}, ${a.bounds![1]}]` : ""}`,
    ),
    ...(out.contribution ? [`  contribution: at most ${out.contribution.maxRowsPerUnit} row(s) per person`] : []),
    `  threshold: ≥ ${out.threshold.minimum} distinct people per row` +
      `${out.threshold.preset ? ` (preset ${out.threshold.preset} = ${THRESHOLD_PRESETS[out.threshold.preset as keyof typeof THRESHOLD_PRESETS]})` : ""}` +
      `, style ${out.threshold.style}`,
    ...(out.noise
      ? [
          `  noise: ${out.noise.mechanism}; with ${confidence * 100}% confidence each released number is within`,
          ...perQuantity.map(
            (q) =>
              `    ${q.name === "units" ? `units${unitsAs.length ? ` (= ${unitsAs.join(", ")})` : " (threshold count)"}` : q.name}` +
              `: ±${q.plusMinus.toLocaleString("en-US")}  (sensitivity ${q.sensitivity}, scale ${q.scale})`,
          ),
        ]
      : ["  noise: none (threshold only: NOT differentially private)"]),
    `  cost per run: ${cost ? costText(cost) : "none"}`,
  ];
  return { ...out, text: L.join("\n") };
}

type AnyCost = PrivacyCost | PrivacyCostJson;

function dims(c: AnyCost, field: string): { kind: PrivacyCost["kind"]; v: Record<string, Rational> } {
  if (!c || typeof c !== "object" || !("kind" in c)) invalid(field, "a privacy cost { kind, ... }", c, "DP_PARAM_INVALID");
  const o = c as unknown as Record<string, unknown>;
  const names = c.kind === "pureDp" ? ["epsilon"] : c.kind === "approxDp" ? ["epsilon", "delta"] : c.kind === "zCdp" ? ["rho"] : null;
  if (!names) return invalid(`${field}.kind`, '"pureDp" | "approxDp" | "zCdp"', c.kind, "DP_PARAM_INVALID");
  return { kind: c.kind, v: Object.fromEntries(names.map((n) => [n, ratFrom(o[n] as Rational, `${field}.${n}`)])) };
}

/**
 * Exact equality of two privacy costs (ledger JSON or library form).
 * @example sameCost(templateCost(t, p)!, budgetSpent(before, after)) // true
 */
export function sameCost(a: AnyCost, b: AnyCost): boolean {
  const x = dims(a, "a");
  const y = dims(b, "b");
  return x.kind === y.kind && Object.keys(x.v).every((k) => ratCompare(x.v[k]!, y.v[k]!) === 0);
}

/**
 * What was spent on one budget between two `budget(lab)` reports (exact: after.spent −
 * before.spent). Default budget: the collaboration's.
 *
 * @example
 * const before = budget(lab); await liftStudy(lab, req); budgetSpent(before, budget(lab)).text // "ε = 1"
 */
export function budgetSpent(
  before: BudgetReport,
  after: BudgetReport,
  key: { scope: string; subject?: string } = { scope: "collaboration" },
): PrivacyCostJson {
  const find = (r: BudgetReport, field: string) => {
    if (!r || !Array.isArray(r.budgets)) invalid(field, "a budget(lab) report", r);
    const b = r.budgets.find((x) => x.scope === key.scope && (key.subject === undefined || x.subject === key.subject));
    if (!b)
      return invalid(
        "key",
        `a budget of ${field} (${r.budgets.map((x) => `${x.scope}/${x.subject}`).join(", ")})`,
        `${key.scope}/${key.subject ?? "*"}`,
        "BUDGET_NOT_FOUND",
      );
    return b;
  };
  const b0 = dims(find(before, "before").spent, "before.spent");
  const b1 = dims(find(after, "after").spent, "after.spent");
  if (b0.kind !== b1.kind) invalid("after", `a report of the same accountant (${b0.kind})`, b1.kind, "DP_PARAM_INVALID");
  const d = Object.fromEntries(Object.keys(b0.v).map((k) => [k, ratSub(b1.v[k]!, b0.v[k]!)]));
  for (const [k, v] of Object.entries(d))
    if (v.num < 0n)
      invalid(`after.spent.${k}`, "≥ before (spending never goes down without a refresh)", ratToDecimal(v), "DP_PARAM_INVALID");
  const j = (r: Rational) => ({ num: r.num.toString(), den: r.den.toString() });
  const txt = (r: Rational) => ratToDecimal(r, 9);
  if (b0.kind === "pureDp") return { kind: "pureDp", epsilon: j(d.epsilon!), text: `ε = ${txt(d.epsilon!)}` };
  if (b0.kind === "approxDp")
    return { kind: "approxDp", epsilon: j(d.epsilon!), delta: j(d.delta!), text: `(ε = ${txt(d.epsilon!)}, δ = ${txt(d.delta!)})` };
  return { kind: "zCdp", rho: j(d.rho!), text: `ρ = ${txt(d.rho!)}` };
}
