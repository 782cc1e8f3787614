/**
 * Difference checks in the Ads Data Hub manner (developers.google.com/ads-data-hub/guides/
 * legacy-diff-checks; reference/clean-room-systems.md §1.2).
 *
 * The room remembers, for every released row of every earlier result, the set of privacy
 * units behind it (as truncated SHA-256 digests, inside the room's database — the analyst
 * never sees them). A new row whose unit set S differs from an earlier released row's set T
 * by fewer than k units on either side (0 < |S∖T| < k or 0 < |T∖S| < k) would let the
 * analyst subtract the two and isolate those few people: the row is filtered. If the
 * result's total unit set is that close to an earlier result's total, the whole result is
 * refused (`DIFFERENCE_CHECK_FAILED`). ADH's example: campaign 123 had 400 users in job 1
 * and 401 in job 2 → the row is filtered. Threat model: an analyst running a cohort C and
 * then C minus one person to learn that person's value.
 *
 * `evaluate` is read-only; `record` is called only after a result is fully released, so a
 * refusal leaves the history unchanged.
 */
import type { Database } from "better-sqlite3";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex, utf8 } from "../crypto/primitives.js";

/** Verdict for a candidate result. */
export interface DifferenceVerdict {
  /** Per candidate row: true when the row must be filtered. */
  rowBlocked: boolean[];
  /** True when the candidate's total is within k of an earlier result's total. */
  totalBlocked: boolean;
}

const digest = (id: string) => hex(sha256(utf8(`cleanroom-lab/unit/v1:${id}`))).slice(0, 24);

/** |A ∖ B| and |B ∖ A| for sets. */
function diffSizes(a: Set<string>, b: Set<string>): [number, number] {
  let inBoth = 0;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const x of small) if (large.has(x)) inBoth++;
  return [a.size - inBoth, b.size - inBoth];
}

const close = ([x, y]: [number, number], k: number) => (x > 0 && x < k) || (y > 0 && y < k);

/**
 * History of released unit sets for one room.
 *
 * @example
 * const h = new DifferenceHistory(db, "room-1");
 * const v = h.evaluate([["u1", "u2"]], 50); if (!v.totalBlocked) h.record("q1", [["u1", "u2"]]);
 */
export class DifferenceHistory {
  constructor(
    private readonly db: Database,
    private readonly roomId: string,
  ) {
    db.exec(
      `CREATE TABLE IF NOT EXISTS cleanroom_released_rows (room_id TEXT NOT NULL, result_id TEXT NOT NULL, row_index INTEGER NOT NULL, ` +
        `units TEXT NOT NULL, PRIMARY KEY (room_id, result_id, row_index));`,
    );
  }

  private load(): Map<string, Set<string>[]> {
    const rows = this.db
      .prepare("SELECT result_id, row_index, units FROM cleanroom_released_rows WHERE room_id = ? ORDER BY result_id, row_index")
      .all(this.roomId) as {
      result_id: string;
      units: string;
    }[];
    const out = new Map<string, Set<string>[]>();
    for (const r of rows) {
      const list = out.get(r.result_id) ?? [];
      list.push(new Set(JSON.parse(r.units) as string[]));
      out.set(r.result_id, list);
    }
    return out;
  }

  /** Check candidate rows (unit ids per row) against every earlier released row. */
  evaluate(candidateRows: readonly (readonly string[])[], k: number): DifferenceVerdict {
    const past = this.load();
    const cand = candidateRows.map((ids) => new Set(ids.map(digest)));
    const total = new Set(cand.flatMap((s) => [...s]));
    let totalBlocked = false;
    const rowBlocked = cand.map(() => false);
    for (const rows of past.values()) {
      const pastTotal = new Set(rows.flatMap((s) => [...s]));
      if (close(diffSizes(total, pastTotal), k)) totalBlocked = true;
      cand.forEach((s, i) => {
        if (!rowBlocked[i] && rows.some((t) => close(diffSizes(s, t), k))) rowBlocked[i] = true;
      });
    }
    return { rowBlocked, totalBlocked };
  }

  /** Remember the released rows of a result (call only after release succeeded). */
  record(resultId: string, releasedRows: readonly (readonly string[])[]): void {
    const ins = this.db.prepare("INSERT INTO cleanroom_released_rows (room_id, result_id, row_index, units) VALUES (?, ?, ?, ?)");
    this.db.transaction(() => {
      releasedRows.forEach((ids, i) => ins.run(this.roomId, resultId, i, JSON.stringify(ids.map(digest).sort())));
    })();
  }

  /**
   * Run `fn` (evaluate … record) in one IMMEDIATE transaction: the write lock is taken before
   * the history is read, so a second kernel on the same room cannot evaluate its half of a
   * differencing pair against a history that lacks the first half. Re-entrant.
   */
  atomically<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    return this.db.transaction(fn).immediate();
  }

  /** Number of remembered rows (for "nothing changed" checks). */
  size(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM cleanroom_released_rows WHERE room_id = ?").get(this.roomId) as { n: number }).n;
  }
}
