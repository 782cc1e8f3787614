/**
 * Healthcare joint research (notebook 11): the pieces a hospital–lab study room adds on top
 * of enclave mode.
 *
 *   studyProtocol          the approved protocol id becomes the room's purpose
 *                          (`research.protocol_<id>`, a child of fideslang's research), and the
 *                          room's deny rules refuse re-identification, marketing, personalisation
 *                          and third-party sharing on health data whatever a dataset's tags allow.
 *                          The approval's time bound is the purpose grant's `ttlSeconds`.
 *   marginRecoveryAttack   the analyst's side: takes released cohort tables (cells and totals, from
 *                          one result or several) and computes back every withheld cell the
 *                          published numbers determine (cleanroom/suppression.ts), counts and means.
 *
 * Threat model: a curious analyst with a valid grant who combines everything the approved
 * templates release; a misuse of the data for another purpose is the policy layer's job.
 */
import { invalid } from "../errors.js";
import type { Lab } from "../session/lab.js";
import type { DenyRule } from "../purpose/policy.js";
import type { QueryResult } from "../cleanroom/release.js";
import { recoverSuppressed, type PublishedTable } from "../cleanroom/suppression.js";

export const REIDENTIFICATION_USE = "research.reidentification";

export interface StudyProtocol {
  protocol: string;
  /** The purpose every grant, tag and key release of this study names. */
  purpose: string;
  denyRules: DenyRule[];
}

/**
 * Register a study protocol as the room's purpose and install the re-identification deny rules.
 *
 * @example
 * const p = studyProtocol(lab, { protocol: "cr2026_017", title: "HbA1c by diagnosis and age" });
 * declarePurpose(lab, { party: "hospital", analyst: "pi", purpose: p.purpose, justification: "approved protocol", ttlSeconds: 3600 })
 */
export function studyProtocol(lab: Lab, o: { protocol: string; title: string }): StudyProtocol {
  if (o === null || typeof o !== "object") invalid("options", "{ protocol, title }", o);
  if (typeof o.protocol !== "string" || !/^[a-z][a-z0-9_]{0,47}$/.test(o.protocol))
    invalid("protocol", "a protocol id [a-z][a-z0-9_]{0,47}", o.protocol);
  if (typeof o.title !== "string" || o.title.length < 3 || o.title.length > 200) invalid("title", "a title (3–200 characters)", o.title);
  const purpose = `research.protocol_${o.protocol}`;
  if (!lab.purpose.taxonomy.has("dataUse", purpose))
    lab.purpose.extendTaxonomy({ kind: "dataUse", key: purpose, name: `Study protocol ${o.protocol}: ${o.title}` });
  if (!lab.purpose.taxonomy.has("dataUse", REIDENTIFICATION_USE))
    lab.purpose.extendTaxonomy({ kind: "dataUse", key: REIDENTIFICATION_USE, name: "Re-identification of research subjects" });
  const denyRules: DenyRule[] = [
    {
      name: "no_reidentification_of_health_data",
      dataUses: { matches: "ANY", values: [REIDENTIFICATION_USE, "marketing", "personalize", "third_party_sharing"] },
      dataCategories: { matches: "ANY", values: ["user.health_and_medical"] },
    },
  ];
  return { protocol: o.protocol, purpose, denyRules: lab.purpose.setRules(denyRules) };
}

export interface RecoveredCell {
  /** The withheld row's dimension values (null = a total). */
  key: Record<string, string | number | null>;
  patients: number;
  /** Recovered mean of the first `avg` aggregate, when its sum is determined too. */
  mean: number | null;
}

/**
 * The margin-recovery attack: combine released two-way cells and totals (from one
 * complementary result, or a `drop` cell table plus separately released totals) and solve for
 * every withheld value. Cells neither released nor listed as withheld are empty (0).
 *
 * @example
 * marginRecoveryAttack([cellsOnly, byDiagnosis, byAgeBand, overall], { count: "patients", avg: "mean_hba1c" })
 */
export function marginRecoveryAttack(
  results: readonly Pick<QueryResult, "dimensions" | "rows" | "suppressed">[],
  names: { count: string; avg?: string },
): { recovered: RecoveredCell[]; withheld: number } {
  if (!Array.isArray(results) || results.length === 0) invalid("results", "released query results", results);
  const two = results.find((r) => r.dimensions.length === 2) ?? invalid("results", "one result with two dimensions", "none");
  const [d0, d1] = two.dimensions as [string, string];
  const rowKeys: (string | number)[] = [];
  const colKeys: (string | number)[] = [];
  type V = string | number | null;
  const note = (a: V, b: V) => {
    if (a !== null && !rowKeys.includes(a)) rowKeys.push(a);
    if (b !== null && !colKeys.includes(b)) colKeys.push(b);
  };
  // what is published: key "a|b" (null = total) → [count, sum]
  const known = new Map<string, [bigint, bigint | null]>();
  const withheld = new Set<string>();
  const k = (a: V, b: V) => JSON.stringify([a, b]);
  for (const r of results) {
    const dims = r.dimensions;
    const keyOf = (row: Record<string, V>): [V, V] => [
      dims.includes(d0) ? (row[d0] ?? null) : null,
      dims.includes(d1) ? (row[d1] ?? null) : null,
    ];
    for (const row of r.rows) {
      const [a, b] = keyOf(row);
      note(a, b);
      const n = BigInt(row[names.count] as number);
      const avg = names.avg ? row[names.avg] : null;
      known.set(k(a, b), [n, typeof avg === "number" ? BigInt(Math.round(avg * Number(n))) : null]);
    }
    for (const s of r.suppressed.rows) {
      const [a, b] = keyOf(s.key as Record<string, V>);
      note(a, b);
      withheld.add(k(a, b));
    }
  }
  const table = (pick: 0 | 1): PublishedTable => {
    const val = (a: V, b: V): bigint | null => {
      const key = k(a, b);
      if (known.has(key)) return known.get(key)![pick];
      if (withheld.has(key) || a === null || b === null) return null; // an unpublished total is unknown
      return 0n;
    };
    return {
      cells: rowKeys.map((a) => colKeys.map((b) => val(a, b))),
      rowMargins: rowKeys.map((a) => val(a, null)),
      colMargins: colKeys.map((b) => val(null, b)),
      total: val(null, null),
    };
  };
  const counts = recoverSuppressed(table(0));
  const sums = names.avg ? recoverSuppressed(table(1)) : [];
  const refKey = (ref: (typeof counts)[number]["ref"]): [V, V] =>
    ref.kind === "cell"
      ? [rowKeys[ref.row]!, colKeys[ref.col]!]
      : ref.kind === "rowMargin"
        ? [rowKeys[ref.row]!, null]
        : ref.kind === "colMargin"
          ? [null, colKeys[ref.col]!]
          : [null, null];
  const sumAt = new Map(sums.map((s) => [k(...refKey(s.ref)), s.value]));
  const recovered = counts
    .filter((c) => withheld.has(k(...refKey(c.ref))))
    .map((c) => {
      const [a, b] = refKey(c.ref);
      const sum = sumAt.get(k(a, b));
      return {
        key: { [d0]: a, [d1]: b },
        patients: Number(c.value),
        mean: sum !== undefined && c.value > 0n ? Number(sum) / Number(c.value) : null,
      };
    });
  return { recovered, withheld: withheld.size };
}
