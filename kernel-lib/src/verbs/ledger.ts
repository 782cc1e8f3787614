/**
 * Reading verbs at the door: `budget` (what was spent, what remains, what it buys) and
 * `audit` (the verified, hash-chained log with the misuse review). They change nothing but
 * are validated like every verb, so a malformed option is a typed refusal, not a crash.
 *
 * Threat model: as door.ts. Neither view shows an identifier or a pre-noise value.
 */
import { z } from "zod";
import type { RngStamp } from "../rng.js";
import type { Lab } from "../session.js";
import { costToJson, parseCost, type PrivacyCost } from "../dp/accountant.js";
import type { AccuracyTarget, BudgetReport } from "../dp/planner.js";
import { withMimeBundle } from "../display/bundle.js";
import { auditPayloadFromReport } from "../display/from-results.js";
import { budgetPayloadFromLedger } from "../display/from-ledger.js";
import { parseAtDoor, requireRoom } from "./door.js";
import { RemoteRoom } from "../server/client.js";
import { noteRemoteBudget } from "./remote-budgets.js";
import { namedDatasetBudgets, roomTemplateNames } from "./names.js";

const BudgetInput = z.strictObject({
  /** Named queries whose cost the remaining budget is measured in ("buys 3 × lift"). */
  queries: z
    .array(z.strictObject({ name: z.string().min(1).max(64), cost: z.record(z.string().max(16), z.unknown()) }))
    .max(64)
    .optional(),
  /** An accuracy target: ± `accuracy` with probability `confidence`. */
  target: z
    .strictObject({
      accuracy: z.number().min(0).max(1e12),
      confidence: z
        .number()
        .min(0.5)
        .max(1 - 1e-12),
      sensitivity: z.bigint().min(1n).optional(),
      l2Squared: z.bigint().min(1n).optional(),
    })
    .optional(),
});

/**
 * The room's privacy budgets: spent, remaining, history, and what the remaining budget buys.
 * @example budget(lab, { queries: [{ name: "lift", cost: pureDp("2.5") }] })
 */
export function budget(lab: RemoteRoom, input?: BudgetArgs): Promise<BudgetReport & RngStamp>;
export function budget(lab: Lab, input?: BudgetArgs): BudgetReport & RngStamp;
export function budget(lab: Lab | RemoteRoom, input?: BudgetArgs): (BudgetReport & RngStamp) | Promise<BudgetReport & RngStamp> {
  const l = requireRoom(lab, "budget");
  const o = parseAtDoor(BudgetInput, input === undefined ? {} : input, "input");
  if (l instanceof RemoteRoom) {
    // costs and bigints cross the wire as JSON (rationals as { num, den } strings); the server re-parses them
    const wire = {
      ...o,
      ...(o.queries
        ? { queries: o.queries.map((q, i) => ({ name: q.name, cost: costToJson(parseCost(q.cost, `input.queries[${i}].cost`)) })) }
        : {}),
      ...(o.target
        ? { target: { ...o.target, sensitivity: o.target.sensitivity?.toString(), l2Squared: o.target.l2Squared?.toString() } }
        : {}),
    };
    return l.request<BudgetReport & RngStamp>("budget", { input: JSON.parse(JSON.stringify(wire)) }).then((r) => {
      if (!o.queries && !o.target) noteRemoteBudget(l, r);
      return budgetView(r);
    });
  }
  const queries: { name: string; cost: PrivacyCost }[] | undefined = o.queries?.map((q, i) => ({
    name: q.name,
    cost: parseCost(q.cost, `input.queries[${i}].cost`),
  }));
  return budgetView(l.budget({ ...(queries ? { queries } : {}), ...(o.target ? { target: o.target as AccuracyTarget } : {}) }), l);
}

type BudgetArgs = { queries?: readonly { name: string; cost: PrivacyCost }[]; target?: AccuracyTarget };

function budgetView(r: BudgetReport & RngStamp, l?: Lab): BudgetReport & RngStamp {
  return withMimeBundle(r, (x) => {
    const templateNames = l
      ? roomTemplateNames(
          l,
          x.budgets.flatMap((b) => b.history.map((c) => c.meta.templateHash)),
        )
      : {};
    const p = budgetPayloadFromLedger(x, {
      title: `Privacy budget — ${x.roomId}`,
      rngMode: x.rngMode,
      ...(x.label ? { label: x.label } : {}),
      templateNames,
    });
    // what the remaining budget buys, per named query (computed by the planner, exact)
    const named = l ? namedDatasetBudgets(l, p) : p;
    return { ...named, budgets: named.budgets.map((b, i) => (x.budgets[i]?.buys.length ? { ...b, buys: x.budgets[i]!.buys } : b)) };
  });
}

const AuditInput = z.strictObject({
  /** Most recent entries to show (default: the log's own default). */
  limit: z.number().int().min(1).max(100_000).optional(),
});

/**
 * Verify the hash-chained audit log and show it with the misuse review.
 * @example audit(lab).verification.ok
 */
export function audit(lab: RemoteRoom, input?: { limit?: number }): Promise<ReturnType<Lab["audit"]>>;
export function audit(lab: Lab, input?: { limit?: number }): ReturnType<Lab["audit"]>;
export function audit(lab: Lab | RemoteRoom, input?: { limit?: number }): ReturnType<Lab["audit"]> | Promise<ReturnType<Lab["audit"]>> {
  const l = requireRoom(lab, "audit");
  const o = parseAtDoor(AuditInput, input === undefined ? {} : input, "input");
  if (l instanceof RemoteRoom)
    return Promise.all([
      l.request<ReturnType<Lab["audit"]>>("audit", { input: o }),
      l.request<{ templates: { templateHash: string; name: string }[] }>("approvals"),
    ]).then(([r, a]) => {
      // the view shows template names (the server's approvals list knows them), the hash on hover
      const templateNames = Object.fromEntries(a.templates.map((t) => [t.templateHash, t.name]));
      return withMimeBundle({ ...r }, (x) => auditPayloadFromReport(x, { title: `Audit log — ${l.roomId} (server)`, templateNames }));
    });
  const r = l.audit(o);
  const templateNames = roomTemplateNames(
    l,
    r.rows.map(({ entry }) => entry.templateHash),
  );
  return withMimeBundle({ ...r }, (x) => auditPayloadFromReport(x, { title: "Audit log", templateNames }));
}
