/**
 * `previewQuery`: what a template will do IN THIS ROOM, before anyone approves or runs it and
 * before any budget is spent — the effective threshold after the owners' analysis rules (and
 * who set it), which dimensions, aggregates and filter columns the owners' rules allow or
 * refuse (with the rule that decides), the ± of every released number at 95 %, the cost of
 * one run and, for a party, how many runs its budgets still buy.
 *
 * Room-aware where `previewTemplate` (cleanroom/design.ts) is not: a template that says "≥ 20
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
import type { TemplateInput, TemplateLike } from "../cleanroom/template.js";
import { previewInRoom, type QueryPreview } from "../session/preview.js";
import { withMimeBundle } from "../display/bundle.js";
import type { CleanRoomPayloadInput } from "../display/schema.js";
import { RemoteRoom } from "../server/client.js";
import { invalid } from "../errors.js";
import { paramsArg, parseAtDoor, partyArg, requireRoom, templateArg } from "./door.js";

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

export type { QueryPreview };

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
export function previewQuery(lab: RemoteRoom, input: PreviewQueryInput): Promise<QueryPreview>;
export function previewQuery(lab: Lab, input: PreviewQueryInput): QueryPreview;
export function previewQuery(lab: Lab | RemoteRoom, input: PreviewQueryInput): QueryPreview | Promise<QueryPreview> {
  const l = requireRoom(lab, "previewQuery");
  const q = parseAtDoor(PreviewInput, input, "input");
  if (l instanceof RemoteRoom) {
    // a joined room: the server previews it against its catalog and ledger, read-only (nothing charged, nothing audited)
    if (q.executor === "enclave")
      invalid("input.executor", '"engine" (enclave mode is not served by the room server yet)', "enclave", "PARAM_INVALID");
    const party = q.party === undefined ? undefined : typeof q.party === "string" ? q.party : (q.party as Party).name;
    return l
      .request<QueryPreview>("previewQuery", { input: { ...q, ...(party !== undefined ? { party } : {}) } })
      .then((p) => withMimeBundle({ ...p }, previewPayload));
  }
  return withMimeBundle(previewInRoom(l, q), previewPayload);
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
