/**
 * `previewQuery`: what a template will do IN THIS ROOM, before anyone approves or runs it and
 * before any budget is spent — the effective threshold after the owners' analysis rules (and
 * who set it), which dimensions, aggregates and filter columns the owners' rules allow or
 * refuse (with the rule that decides), the ± of every released number at 95 %, the cost of
 * one run and, for a party, how many runs its budgets still buy.
 *
 * Room-aware where `previewTemplate` (labs/design.ts) is not: a template that says "≥ 20
 * people" over a table whose owner's rule says 100 is previewed as 100, from that rule.
 *
 * Side effects: none. Nothing is charged, approved, audited or written; the input is
 * validated at the door like every verb (door.ts). The room's catalog is read for schema
 * and rule metadata only — never a value.
 *
 * Threat model: as door.ts. The preview reveals what approval would: schema names, rules and
 * public plan data, never data.
 */
import { z } from "zod";
import type { Lab, Party } from "../session.js";
import { internals } from "../session/lab.js";
import type { TemplateInput, TemplateLike } from "../cleanroom/template.js";
import { reviewTemplate, thresholdText, type RuleVerdict } from "../cleanroom/review.js";
import { previewTemplate, type PreviewNoise } from "../labs/design.js";
import { budgetReport } from "../dp/planner.js";
import type { PrivacyCostJson } from "../dp/accountant.js";
import { withMimeBundle } from "../display/bundle.js";
import type { CleanRoomPayloadInput } from "../display/schema.js";
import { paramsArg, parseAtDoor, partyArg, requireLab, templateArg } from "./door.js";

const PreviewInput = z.strictObject({
  template: templateArg,
  params: paramsArg.optional(),
  /** The party who would ask: the preview then says how many runs its budgets still buy. */
  party: partyArg.optional(),
  /** "enclave" when the template reads enclave-sealed datasets. */
  executor: z.enum(["engine", "enclave"]).optional(),
  /** Confidence of the ± half-widths (default 0.95). */
  confidence: z.number().min(0.5).lt(1).optional(),
});

/** What {@link previewQuery} takes. */
export interface PreviewQueryInput {
  /** The template (plan data) or the hash of one proposed in this room. */
  template: TemplateInput | TemplateLike | string;
  params?: Record<string, unknown>;
  party?: Party | string;
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

/**
 * Preview a query in this room before spending anything: effective threshold (after the
 * owners' rules), allowed and refused columns and aggregates, ± per released number, cost.
 * Validates `params` like a run would (`PARAM_INVALID` naming the parameter); charges,
 * approves and audits nothing.
 *
 * @example
 * const p = previewQuery(lab, { template: t, params: { startDay: 0, endDay: 27 }, party: "advertiser" })
 * p.threshold.effective // 100 — the retailer's rule, although the template says adh_noise (20)
 */
export function previewQuery(lab: Lab, input: PreviewQueryInput): QueryPreview {
  const l = requireLab(lab, "previewQuery");
  const q = parseAtDoor(PreviewInput, input, "input");
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
  return withMimeBundle({ ...out, text: previewText(out) }, previewPayload);
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

/** The preview's payload (display/schema.ts kind "preview"). */
function previewPayload(p: QueryPreview): CleanRoomPayloadInput {
  return {
    kind: "preview",
    version: 1,
    title: `Preview — ${p.name} (nothing charged)`,
    templateHash: p.templateHash,
    threshold: { effective: p.threshold.effective, from: p.threshold.from, template: p.threshold.template, text: p.threshold.text },
    checks: [...p.refused, ...p.allowed].map((v) => ({
      use: v.use,
      column: v.fn ? `${v.fn}(${v.column})` : v.column,
      rule: v.rule,
      allowed: v.allowed,
      reason: v.reason,
    })),
    plusMinus: p.plusMinus.map((x) => ({ name: x.name === "units" ? "units (the threshold's count)" : x.name, plusMinus: x.plusMinus })),
    confidence: p.confidence,
    cost: p.cost ? p.cost.text : null,
    ...(p.runsLeft ? { runsLeft: p.runsLeft } : {}),
    ...(p.refusal ? { refused: { code: p.refusal.code, message: p.refusal.message } } : {}),
  };
}
