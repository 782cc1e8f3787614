/**
 * The last budget each joined room's server reported, kept for the live budget view
 * (verbs/live.ts) and noted by `budget(room)` (verbs/ledger.ts) — its own module so neither of
 * those imports the other. Weak: a room nobody holds is not kept alive.
 */
import type { RemoteRoom } from "../server/client.js";
import type { BudgetReport } from "../dp/planner.js";
import type { RngStamp } from "../rng.js";

export const remoteBudgets = new WeakMap<RemoteRoom, BudgetReport & RngStamp>();

/** A budget the member asked for itself is the freshest view (verbs/ledger.ts). */
export function noteRemoteBudget(room: RemoteRoom, report: BudgetReport & RngStamp): void {
  remoteBudgets.set(room, report);
}
