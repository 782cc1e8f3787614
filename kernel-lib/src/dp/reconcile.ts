/**
 * Reconciling the privacy ledger with the audit chain (pure: plain data in, mismatches out).
 *
 * Threat model: whoever can open the room's SQLite file can `DELETE FROM dp_charges` and zero
 * the spent columns — the ledger stays self-consistent and would report the budget unspent.
 * The audit chain cannot be rewritten without the audit key (MACs, signed heads), and every
 * charge is committed together with a `charge` entry naming its cost and every budget it
 * charged. So for each budget a room uses, the charges this room made must be exactly the
 * audited ones: the same number, the same total (in the budget's unit), and the same total in
 * the budget's current refresh period. A mismatch names the budget and the audit entry range.
 */
import { type AccountantKind, type PrivacyCost, costIn, costToJson, zeroCost } from "./accountant.js";
import { type RefreshPolicy, periodOf } from "./budget.js";
import { type Rational, ratAdd, ratFrom } from "./rational.js";
import { invalid } from "../errors.js";

/** A charge as the verified audit chain records it. */
export interface AuditedCharge {
  /** Audit entry index. */
  index: number;
  /** Entry timestamp (ISO). */
  ts: string;
  /** The requested cost, dims as "num/den" or integer strings. */
  cost: { kind: string; epsilon?: string; delta?: string; rho?: string };
  /** "scope/subject" of every budget charged. */
  budgets: string[];
}

/** A disagreement between the ledger and the audit chain for one budget. */
export interface LedgerMismatch {
  budget: string;
  /** First and last audit entry index that record a charge of this budget (null when none). */
  entries: [number, number] | null;
  audited: string;
  ledger: string;
  detail: string;
}

/** One budget as the ledger holds it, with the charges THIS room made to it (in the budget's unit). */
export interface LedgerBudgetView {
  name: string;
  accountant: AccountantKind;
  refresh: RefreshPolicy;
  period: string;
  charges: { cost: PrivacyCost; period: string }[];
}

const FRACTION = /^\d{1,40}(\/[1-9]\d{0,39})?$/;
function dim(x: string | undefined, field: string): Rational {
  if (x === undefined || !FRACTION.test(x)) return invalid(field, `"num/den"`, x, "LEDGER_ERROR");
  return ratFrom(x, field);
}

function audited(c: AuditedCharge["cost"], field: string): PrivacyCost {
  if (c.kind === "pureDp") return { kind: "pureDp", epsilon: dim(c.epsilon, `${field}.epsilon`) };
  if (c.kind === "approxDp")
    return { kind: "approxDp", epsilon: dim(c.epsilon, `${field}.epsilon`), delta: dim(c.delta, `${field}.delta`) };
  if (c.kind === "zCdp") return { kind: "zCdp", rho: dim(c.rho, `${field}.rho`) };
  return invalid(`${field}.kind`, "a known kind", c.kind, "LEDGER_ERROR");
}

function add(a: PrivacyCost, b: PrivacyCost): PrivacyCost {
  if (a.kind === "pureDp" && b.kind === "pureDp") return { kind: "pureDp", epsilon: ratAdd(a.epsilon, b.epsilon) };
  if (a.kind === "approxDp" && b.kind === "approxDp")
    return { kind: "approxDp", epsilon: ratAdd(a.epsilon, b.epsilon), delta: ratAdd(a.delta, b.delta) };
  if (a.kind === "zCdp" && b.kind === "zCdp") return { kind: "zCdp", rho: ratAdd(a.rho, b.rho) };
  return invalid("cost.kind", a.kind, b.kind, "LEDGER_ERROR");
}

/**
 * Mismatches between a room's ledger view and the charges its audit chain records.
 * @example
 * reconcileCharges(
 *   "lab",
 *   [{ name: "collaboration/lab", accountant: "pureDp", refresh: "none", period: "all", charges: [] }],
 *   audited,
 * ) // [] when they agree
 */
export function reconcileCharges(
  roomId: string,
  budgets: readonly LedgerBudgetView[],
  charges: readonly AuditedCharge[],
): LedgerMismatch[] {
  const byKey = new Map<string, AuditedCharge[]>();
  for (const a of charges)
    for (const b of a.budgets) {
      const l = byKey.get(b);
      if (l) l.push(a);
      else byKey.set(b, [a]);
    }
  const known = new Map(budgets.map((b) => [b.name, b]));
  const out: LedgerMismatch[] = [];
  const text = (c: PrivacyCost) => costToJson(c).text;
  const same = (a: PrivacyCost, b: PrivacyCost) => JSON.stringify(costToJson(a)) === JSON.stringify(costToJson(b));
  for (const name of new Set([...known.keys(), ...byKey.keys()])) {
    const list = byKey.get(name) ?? [];
    const range: [number, number] | null = list.length ? [list[0]!.index, list[list.length - 1]!.index] : null;
    const where = range ? `audit entries ${range[0]}..${range[1]}` : "no audit entry";
    const b = known.get(name);
    if (!b) {
      out.push({
        budget: name,
        entries: range,
        audited: `${list.length} charge(s)`,
        ledger: "no budget",
        detail: `budget ${name}: ${where} record ${list.length} charge(s) but the ledger has no such budget — it was deleted`,
      });
      continue;
    }
    let aAll = zeroCost(b.accountant),
      aCur = zeroCost(b.accountant),
      lAll = zeroCost(b.accountant),
      lCur = zeroCost(b.accountant);
    for (const a of list) {
      const c = costIn(b.accountant, audited(a.cost, `audit entry ${a.index}`));
      aAll = add(aAll, c);
      if (b.refresh === "none" || periodOf(b.refresh, new Date(a.ts)) === b.period) aCur = add(aCur, c);
    }
    for (const ch of b.charges) {
      lAll = add(lAll, ch.cost);
      if (ch.period === b.period) lCur = add(lCur, ch.cost);
    }
    if (list.length !== b.charges.length || !same(aAll, lAll))
      out.push({
        budget: name,
        entries: range,
        audited: text(aAll),
        ledger: text(lAll),
        detail:
          `budget ${name}: ${where} record ${list.length} charge(s) totalling ${text(aAll)}, ` +
          `the ledger holds ${b.charges.length} charge(s) totalling ${text(lAll)} for room ${roomId}`,
      });
    else if (!same(aCur, lCur))
      out.push({
        budget: name,
        entries: range,
        audited: text(aCur),
        ledger: text(lCur),
        detail: `budget ${name}: ${where} record ${text(aCur)} charged in period ${b.period}, the ledger's charges of that period total ${text(lCur)}`,
      });
  }
  return out;
}
