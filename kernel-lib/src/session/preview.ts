/**
 * The room-aware preview of a query (the `previewQuery` verb's work, verbs/preview.ts): what a
 * template will do in THIS room before anyone approves or runs it — effective threshold after the
 * owners' rules, allowed and refused column uses, ± per released number, cost of one run and runs
 * left. Here so that a lab (the verb) and the room server (the `previewQuery` op, for a joined
 * room) compute it the same way.
 *
 * Side effects: none. Nothing is charged, approved, audited or written; the catalog is read for
 * schema and rule metadata only — never a value.
 *
 * Threat model: the preview reveals what approval would: schema names, rules and public plan
 * data, never data.
 */
import type { Lab } from "./lab.js";
import { internals } from "./lab.js";
import type { TemplateInput } from "../cleanroom/template.js";
import { reviewTemplate, thresholdText, type RuleVerdict } from "../cleanroom/review.js";
import { previewTemplate, type PreviewNoise } from "../cleanroom/design.js";
import { budgetReport } from "../dp/planner.js";
import type { PrivacyCostJson } from "../dp/accountant.js";

/** What the preview needs (validated by the caller: the verb's door, or the server's gate and the member's door). */
export interface PreviewRequest {
  template: unknown;
  params?: Record<string, unknown>;
  party?: string | { name: string };
  executor?: "engine" | "enclave";
  confidence?: number;
}

/** What {@link previewQuery} returns: plain data (renders as a table in a notebook). */
export interface QueryPreview {
  kind: "queryPreview";
  name: string;
  templateHash: string;
  /** The threshold the run would apply: max of the template's minimum and each owner's COUNT_DISTINCT minimum. */
  threshold: { effective: number; from: string; template: number; rules: { rule: string; minimum: number }[]; text: string };
  /** True when the template's own threshold is looser than the effective one (an owner's rule wins). */
  thresholdRaised: boolean;
  /** Column uses the owners' rules allow / refuse, each with the rule that decides. */
  allowed: RuleVerdict[];
  refused: RuleVerdict[];
  /** The refusal approval and every run would raise (rules, identifiers, schema), or null. */
  refusal: { code: string; field?: string; message: string } | null;
  /** ± of every released number (half-width at `confidence`, exact discrete tail); empty without noise. */
  plusMinus: PreviewNoise[];
  confidence: number;
  /** Cost of one run (null: threshold only, no DP claim). Never charged by the preview. */
  cost: PrivacyCostJson | null;
  /** With `party`: how many runs the collaboration's and the party's budgets still buy (the smaller). */
  runsLeft: { party: string; runs: number } | null;
  /** The owners who must approve, and who already did (null: never proposed in this room). */
  approval: { owners: string[]; approvedBy: string[]; approved: boolean } | null;
  charged: false;
  text: string;
}

/** Compute the preview of `q` in `lab`'s room (plain data, no side effect). */
export function previewInRoom(l: Lab, q: PreviewRequest): QueryPreview {
  const { room, enclave } = internals(l);
  const t = room.resolveTemplate(q.template) as Parameters<typeof reviewTemplate>[0];
  const party = q.party === undefined ? undefined : room.requireParty(q.party, "input.party");
  const design = previewTemplate(t as TemplateInput, q.params, { confidence: q.confidence ?? 0.95 });
  const ctx = q.executor === "enclave" ? enclave().operator.planContext() : room.planContext();
  const review = reviewTemplate(t, ctx);
  const th = review.threshold;
  let approval: QueryPreview["approval"] = null;
  try {
    const st = room.templates.status(design.hash);
    approval = { owners: st.owners, approvedBy: st.approvedBy, approved: st.approved };
  } catch {
    /* never proposed here */
  }
  let runsLeft: QueryPreview["runsLeft"] = null;
  if (party !== undefined && design.cost) {
    try {
      const rep = budgetReport(room.ledger.status(l.roomId), { queries: [{ name: "this query", cost: design.cost }] });
      const mine = rep.budgets.filter((b) => b.scope === "collaboration" || (b.scope === "party" && b.subject === party));
      if (mine.length) runsLeft = { party, runs: Math.min(...mine.map((b) => b.buys[0]?.count ?? 0)) };
    } catch {
      /* a budget of another accountant: nothing to count */
    }
  }
  const out: Omit<QueryPreview, "text"> = {
    kind: "queryPreview",
    name: design.name,
    templateHash: design.hash,
    threshold: { ...th, text: thresholdText(th.effective, th.from, th.template) },
    thresholdRaised: th.template < th.effective,
    allowed: review.verdicts.filter((v) => v.allowed),
    refused: review.verdicts.filter((v) => !v.allowed),
    refusal: review.refusal,
    plusMinus: design.noise?.perQuantity ?? [],
    confidence: design.noise?.confidence ?? q.confidence ?? 0.95,
    cost: design.cost,
    runsLeft,
    approval,
    charged: false,
  };
  return { ...out, text: previewText(out) };
}

const verdictText = (v: RuleVerdict) =>
  `${v.use} ${v.fn ? `${v.fn}(${v.column})` : v.column}: ${v.allowed ? "allowed" : "REFUSED"} by the rule of ${v.rule} (${v.reason})`;

function previewText(p: Omit<QueryPreview, "text">): string {
  const pct = `${Math.round(p.confidence * 1000) / 10}%`;
  return [
    `Preview of "${p.name}" (hash ${p.templateHash.slice(0, 12)}…) — nothing charged`,
    `  threshold: ${p.threshold.text}`,
    ...(p.refusal ? [`  ✗ approval and runs would be refused: ${p.refusal.code}: ${p.refusal.message}`] : []),
    ...p.refused.map((v) => `  ✗ ${verdictText(v)}`),
    ...p.allowed.map((v) => `  ✓ ${verdictText(v)}`),
    ...(p.plusMinus.length
      ? [`  ± at ${pct} per released number: ${p.plusMinus.map((x) => `${x.name} ±${x.plusMinus.toLocaleString("en-US")}`).join(", ")}`]
      : ["  noise: none (threshold only: NOT differentially private)"]),
    `  cost per run: ${p.cost ? p.cost.text : "none"}${p.runsLeft ? `; ${p.runsLeft.runs} run(s) left for ${p.runsLeft.party}` : ""}`,
    ...(p.approval ? [`  approvals: ${p.approval.approvedBy.join(", ") || "none"} of ${p.approval.owners.join(", ")}`] : []),
  ].join("\n");
}
