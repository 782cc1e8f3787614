/**
 * The room's budget configuration, kept IN the room (its SQLite file) at first open.
 *
 * Threat model / purpose: a second kernel on the same room must not need to repeat the
 * `budget` option (without it every noised query said BUDGET_NOT_FOUND), and must not be able
 * to change the budget by passing a different one. So the first open that gives a budget
 * stores it; a later open without `budget` uses the stored one; a later open with a budget
 * that differs from the stored one (compared exactly: 6, "6" and "6.0" are the same ε) is
 * refused with `ALREADY_EXISTS` naming `options.budget` — nothing is changed. A room first
 * opened without a budget may get one later (the first budget given is stored).
 *
 * Table: `lab_room_config (room_id PRIMARY KEY, budget_json, created_at)`.
 */
import type { Database } from "better-sqlite3";
import { CleanRoomError } from "../errors.js";
import { ratFromDecimal, ratToString } from "./rational.js";

/** The budget options of `openLab` (a subset of plain JSON values). */
export interface RoomBudgetConfig {
  epsilon?: string | number;
  delta?: string | number;
  rho?: string | number;
  perParty?: string | number;
  refresh?: "none" | "daily" | "monthly";
}

const DIMS = ["epsilon", "delta", "rho", "perParty"] as const;

/** Exact normal form: each given amount as a reduced fraction; refresh defaults to "none". */
function normal(b: RoomBudgetConfig): string {
  const o: Record<string, string> = { refresh: b.refresh ?? "none" };
  for (const d of DIMS) if (b[d] !== undefined) o[d] = ratToString(ratFromDecimal(b[d]!, `options.budget.${d}`));
  return JSON.stringify(o, Object.keys(o).sort());
}

/** Human text of a stored config (amounts are configuration, not data: safe to echo). */
function text(b: RoomBudgetConfig): string {
  return DIMS.filter((d) => b[d] !== undefined)
    .map((d) => `${d}: ${String(b[d])}`)
    .concat(`refresh: ${b.refresh ?? "none"}`)
    .join(", ");
}

/**
 * Settle the room's budget: store `requested` at first open, return the stored one when
 * `requested` is undefined, refuse a different one. Call before any other write of the open.
 * @example const budget = settleRoomBudget(db, "lab", { epsilon: 6 })  // later: settleRoomBudget(db, "lab", undefined) → { epsilon: 6 }
 */
export function settleRoomBudget(db: Database, roomId: string, requested: RoomBudgetConfig | undefined): RoomBudgetConfig | undefined {
  db.exec(`CREATE TABLE IF NOT EXISTS lab_room_config (room_id TEXT PRIMARY KEY, budget_json TEXT NOT NULL, created_at TEXT NOT NULL)`);
  if (requested !== undefined) normal(requested); // a malformed amount is refused before anything is written
  return db
    .transaction((): RoomBudgetConfig | undefined => {
      const row = db.prepare(`SELECT budget_json FROM lab_room_config WHERE room_id = ?`).get(roomId) as
        { budget_json: string } | undefined;
      if (!row) {
        if (requested === undefined) return undefined;
        db.prepare(`INSERT INTO lab_room_config (room_id, budget_json, created_at) VALUES (?, ?, ?)`).run(
          roomId,
          JSON.stringify(requested),
          new Date().toISOString(),
        );
        return requested;
      }
      const stored = JSON.parse(row.budget_json) as RoomBudgetConfig;
      if (requested !== undefined && normal(requested) !== normal(stored))
        throw new CleanRoomError(
          "ALREADY_EXISTS",
          `"options.budget" differs from the budget room ${roomId} was created with (${text(stored)}); ` +
            `a room's budget cannot be changed by reopening it — omit "budget" to use the stored one, or open a new room`,
          { field: "options.budget", expected: text(stored) },
        );
      return stored;
    })
    .immediate();
}
