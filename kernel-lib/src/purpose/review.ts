/**
 * Misuse review over audit entries: purpose limitation deters by being detectable. Lists
 * every refused request and flags unusual patterns per requester (party/analyst):
 *  - `repeated_denials`: at least `repeatedDenials` refusals;
 *  - `purpose_switching`: a refusal followed by a request under a different purpose
 *    ("purpose shopping"), or `distinctPurposes`+ purposes overall;
 *  - `burst`: `burstCount`+ requests within `burstWindowSeconds`.
 * Pure function of the entries; output is plain data for display.
 */
import { invalid } from "../errors.js";

/** What the review reads of an audit entry (audit.ts's `AuditEntry` has these and more). */
export interface ReviewedEntry {
  seq: number;
  ts: string;
  action: string;
  who: { party: string; analyst?: string | undefined };
  purpose: string | null;
  outcome: string;
  errorCode: string | null;
  datasets: string[];
}

export interface ReviewOptions {
  repeatedDenials?: number;
  distinctPurposes?: number;
  burstCount?: number;
  burstWindowSeconds?: number;
}

export interface MisuseFlag {
  kind: "repeated_denials" | "purpose_switching" | "burst";
  /** "party/analyst" */
  who: string;
  detail: string;
  seqs: number[];
}

export interface MisuseReview<E extends ReviewedEntry = ReviewedEntry> {
  entries: number;
  refused: Array<Pick<E, "seq" | "ts" | "action" | "purpose" | "errorCode" | "datasets"> & { who: string }>;
  flags: MisuseFlag[];
}

const posInt = (v: unknown, d: number, f: string): number => {
  const x = v ?? d;
  if (!Number.isInteger(x) || (x as number) < 1) invalid(f, "positive integer", x, "INPUT_INVALID");
  return x as number;
};

/**
 * Review entries for refusals and unusual patterns.
 *
 * @example
 * reviewEntries(audit.entries(), { repeatedDenials: 3, burstCount: 20, burstWindowSeconds: 60 })
 */
export function reviewEntries<E extends ReviewedEntry>(entries: readonly E[], opts: ReviewOptions = {}): MisuseReview<E> {
  const repeated = posInt(opts.repeatedDenials, 3, "repeatedDenials");
  const distinct = posInt(opts.distinctPurposes, 4, "distinctPurposes");
  const burstCount = posInt(opts.burstCount, 20, "burstCount");
  const windowMs = posInt(opts.burstWindowSeconds, 60, "burstWindowSeconds") * 1000;
  const whoOf = (e: E) => `${e.who.party}/${e.who.analyst ?? "-"}`;
  const byWho = new Map<string, E[]>();
  for (const e of entries) byWho.set(whoOf(e), [...(byWho.get(whoOf(e)) ?? []), e]);
  const flags: MisuseFlag[] = [];
  for (const [who, es] of [...byWho].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const refused = es.filter((e) => e.outcome === "refused");
    if (refused.length >= repeated)
      flags.push({ kind: "repeated_denials", who, detail: `${refused.length} refused requests`, seqs: refused.map((e) => e.seq) });
    const switches: number[] = [];
    for (const r of refused) {
      const next = es.find((e) => e.seq > r.seq && e.purpose !== null && r.purpose !== null && e.purpose !== r.purpose);
      if (next) switches.push(r.seq, next.seq);
    }
    const purposes = [...new Set(es.map((e) => e.purpose).filter((p): p is string => p !== null))].sort();
    if (switches.length > 0)
      flags.push({
        kind: "purpose_switching",
        who,
        detail: `changed purpose after a refusal (${purposes.join(", ")})`,
        seqs: [...new Set(switches)].sort((a, b) => a - b),
      });
    else if (purposes.length >= distinct)
      flags.push({
        kind: "purpose_switching",
        who,
        detail: `${purposes.length} distinct purposes (${purposes.join(", ")})`,
        seqs: es.map((e) => e.seq),
      });
    const ts = es.map((e) => Date.parse(e.ts));
    for (let i = 0, j = 0; j < ts.length; j++) {
      while (ts[j]! - ts[i]! > windowMs) i++;
      if (j - i + 1 >= burstCount) {
        flags.push({
          kind: "burst",
          who,
          detail: `${j - i + 1} requests within ${windowMs / 1000}s`,
          seqs: es.slice(i, j + 1).map((e) => e.seq),
        });
        break;
      }
    }
  }
  return {
    entries: entries.length,
    refused: entries
      .filter((e) => e.outcome === "refused")
      .map((e) => ({
        seq: e.seq,
        ts: e.ts,
        who: whoOf(e),
        action: e.action,
        purpose: e.purpose,
        errorCode: e.errorCode,
        datasets: e.datasets,
      })),
    flags,
  };
}
