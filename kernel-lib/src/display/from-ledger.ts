/**
 * Budget payloads from the DP ledger's status (`PrivacyLedger.status(roomId)`): exact
 * rationals become display numbers plus exact `num/den` strings; each budget's charge history
 * becomes the payload's history. Pure: reads the status object only.
 */
import type { BudgetStatus } from "../dp/ledger.js";
import type { PrivacyCostJson } from "../dp/accountant.js";
import type { RationalJson } from "../dp/rational.js";
import type { PayloadOf } from "./schema.js";
import { checkPayload } from "./bundle.js";

const num = (r: RationalJson): number => Number(r.num) / Number(r.den);
const exact = (r: RationalJson): string => (r.den === "1" ? r.num : `${r.num}/${r.den}`);
/** The main dimension of a cost: ε for pure/approx DP, ρ for zCDP. */
const main = (c: PrivacyCostJson): RationalJson => (c.kind === "zCdp" ? c.rho : c.epsilon);

/**
 * Convert a ledger status to a `budget` payload.
 *
 * @example
 * show(budgetPayloadFromLedger(ledger.status("room-1")));
 */
export function budgetPayloadFromLedger(
  status: { roomId: string; budgets: readonly BudgetStatus[] },
  opts: { title?: string; rngMode?: "secure" | "seeded"; label?: string; templateNames?: Readonly<Record<string, string>> } = {},
): PayloadOf<"budget"> {
  const { templateNames: names = {}, ...stamp } = opts;
  const p = {
    kind: "budget" as const,
    version: 1 as const,
    roomId: status.roomId,
    ...stamp,
    budgets: status.budgets.map((b) => {
      const [t, s, r] = [main(b.total), main(b.spent), main(b.remaining)];
      return {
        scope: b.scope,
        subject: b.subject,
        accountant: b.accountant,
        unit: b.accountant === "zCdp" ? ("rho" as const) : ("epsilon" as const),
        total: num(t),
        spent: num(s),
        remaining: Math.max(0, num(r)),
        exact: { total: exact(t), spent: exact(s), remaining: exact(r) },
        ...(b.total.kind === "approxDp" && b.spent.kind === "approxDp"
          ? { delta: { total: num(b.total.delta), spent: num(b.spent.delta) } }
          : {}),
        ...(b.refresh !== "none"
          ? {
              lifetimeSpent: num(main(b.lifetimeSpent)),
              refresh: { policy: b.refresh, nextRefresh: b.nextRefresh, warning: b.refreshWarning ?? "" },
            }
          : {}),
        history: b.history.map((c) => ({
          at: c.at,
          templateHash: c.meta.templateHash ?? "—",
          ...(c.meta.templateHash && Object.hasOwn(names, c.meta.templateHash) ? { templateName: names[c.meta.templateHash] } : {}),
          purpose: c.meta.purpose ?? "—",
          cost: num(main(c.cost)),
          outcome: "charged" as const,
          ...(c.meta.note ? { note: c.meta.note } : {}),
        })),
      };
    }),
  };
  return checkPayload(p) as PayloadOf<"budget">;
}
