/**
 * Which budget payload the "Privacy budget" sidebar shows: the one output last by execution
 * (highest execution count; a cell with outputs but no count yet is the one running now),
 * the last one within a cell, ties broken by position. Pure, so it tests without JupyterLab.
 */
import { CLEANROOM_MIME, parsePayload, type PayloadOf } from "@cleanroom-lab/kernel/dist/display/schema.js";

/** What the sidebar needs of a code cell: its execution count and its outputs' MIME data. */
export interface CellOutputs {
  executionCount: number | null;
  outputs: ReadonlyArray<Readonly<Record<string, unknown>>>;
}

/** The latest budget payload and where it came from. */
export interface LatestBudget {
  payload: PayloadOf<"budget">;
  cellIndex: number;
  executionCount: number | null;
}

/**
 * Find the latest valid budget payload among a notebook's code cells.
 *
 * @example
 * latestBudget([{ executionCount: 3, outputs: [{ "application/vnd.cleanroom-lab.v1+json": budget }] }])
 */
export function latestBudget(cells: ReadonlyArray<CellOutputs>): LatestBudget | null {
  let best: LatestBudget | null = null;
  let bestRank = -Infinity;
  cells.forEach((cell, cellIndex) => {
    const rank = cell.executionCount ?? Number.MAX_SAFE_INTEGER;
    if (rank < bestRank) return;
    for (let i = cell.outputs.length - 1; i >= 0; i--) {
      const data = cell.outputs[i]![CLEANROOM_MIME];
      if (data === undefined) continue;
      const r = parsePayload(data);
      if (r.ok && r.payload.kind === "budget") {
        best = { payload: r.payload, cellIndex, executionCount: cell.executionCount };
        bestRank = rank;
        return;
      }
    }
  });
  return best;
}
