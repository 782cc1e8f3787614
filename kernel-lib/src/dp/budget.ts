/**
 * Budget keys, refresh periods and dataset fingerprints: the pure half of the ledger.
 *
 * Threat model: a budget that can be reset by renaming is no budget. Dataset budgets are
 * therefore keyed by a fingerprint of the CONTENT (an order-insensitive hash of canonical
 * rows), never by the upload name: re-uploading the same rows under a new name lands on the
 * same budget. Refresh restores a per-period allowance, which is not privacy — the warning
 * text says so (AWS Clean Rooms dp-settings).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { invalid } from "../errors.js";
import { type PrivacyCost, costText } from "./accountant.js";

export type BudgetScope = "collaboration" | "party" | "dataset";
export const BUDGET_SCOPES: readonly BudgetScope[] = ["collaboration", "party", "dataset"];
export type RefreshPolicy = "none" | "daily" | "monthly";

/** Which budget: `(roomId, scope, subject)`; `subject` is e.g. the room id, a party name, or a dataset content hash. */
export interface BudgetKey {
  scope: BudgetScope;
  subject: string;
}

/**
 * Order-insensitive content fingerprint of a dataset: SHA-256 over the sorted SHA-256 digests
 * of its canonical rows (pass e.g. `JSON.stringify(columns.map(c => row[c]))` per row, with
 * columns sorted by name). Renaming the dataset or reordering rows does not change it.
 * @example datasetFingerprint(["[1,\"a\"]", "[2,\"b\"]"]) // "9c1e…" (64 hex chars)
 */
export function datasetFingerprint(canonicalRows: Iterable<string>): string {
  const enc = new TextEncoder();
  const digests: string[] = [];
  for (const r of canonicalRows) {
    if (typeof r !== "string") invalid("canonicalRows", "iterable of strings", r);
    digests.push(hexOf(sha256(enc.encode(r))));
  }
  digests.sort();
  return hexOf(sha256(enc.encode(`cleanroom-lab/dataset-fingerprint/v1:${digests.length}:${digests.join("")}`)));
}

function hexOf(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/**
 * The dataset-scope budget key for a content fingerprint (never the dataset's name).
 * @example ledger.createBudget(room, datasetBudgetKey(datasetFingerprint(rows)), pureDp("1"))
 */
export function datasetBudgetKey(fingerprint: string): BudgetKey {
  if (typeof fingerprint !== "string" || !/^[0-9a-f]{64}$/.test(fingerprint))
    invalid("fingerprint", "64 lowercase hex characters (datasetFingerprint)", fingerprint);
  return { scope: "dataset", subject: `sha256:${fingerprint}` };
}

/** The period a date falls in under a refresh policy (UTC): "all", "2026-11-25" or "2026-11". @example periodOf("monthly", new Date()) */
export function periodOf(refresh: RefreshPolicy, d: Date): string {
  if (refresh === "none") return "all";
  const iso = d.toISOString();
  return refresh === "daily" ? iso.slice(0, 10) : iso.slice(0, 7);
}

/** ISO time of the next refresh, or null. @example nextRefreshOf("daily", new Date("2026-11-25T10:00Z")) // "2026-11-26T00:00:00.000Z" */
export function nextRefreshOf(refresh: RefreshPolicy, d: Date): string | null {
  if (refresh === "none") return null;
  const n =
    refresh === "daily"
      ? new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1))
      : new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
  return n.toISOString();
}

/**
 * What refreshing a budget really costs, in words (shown with every refreshing budget).
 * @example refreshWarning("monthly", pureDp("1"))
 */
export function refreshWarning(refresh: RefreshPolicy, total: PrivacyCost): string | null {
  if (refresh === "none") return null;
  const per = refresh === "daily" ? "day" : "month";
  return (
    `This budget (${costText(total)}) is restored every ${per}. Refresh is not privacy: an analyst who repeats the same ` +
    `query each ${per} averages the noise away, and after N ${per}s the total privacy loss is N × (${costText(total)}). ` +
    `AWS Clean Rooms warns that refresh "allows arbitrary amounts of information to be revealed about rows … when repeatedly ` +
    `queried across refreshes". See lifetimeSpent for the cumulative loss.`
  );
}
