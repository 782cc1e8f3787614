/**
 * Purpose-limitation lab: helpers the teaching notebooks use to show the purpose layer live
 * (notebooks/03-purpose-limitation, 07-putting-it-together).
 *
 * `purposeTable(lab)` evaluates the seed's four-row table against a real room: for each row
 * the owner uploads a small dataset tagged with the row's purposes (sealed by the encryption
 * gate), the requester declares the row's query purpose (a signed grant), and the room's
 * `authorizeQuery` decides — policy first, then the key gate releasing (or not) the data key.
 * Every step leaves its audit entry. The result is plain data that renders as the `purpose`
 * payload (grants + decisions). `permitMatrix` tabulates which purposes a set of labels
 * permits, for showing label propagation (`combineLabels`).
 *
 * The purpose layer's building blocks are re-exported here so a notebook can bypass the policy
 * code and call the gate itself (`unwrapAndOpen`, `deriveKek`, `PurposeKeyService`) — the
 * point being that skipping the `if` does not yield plaintext.
 *
 * Threat model: none of its own; this module adds no capability beyond the purpose layer's
 * public API. Results carry no identifiers (dataset ids are generated short names).
 */
import { aq } from "../cleanroom/arquero.js";
import { CleanRoomError, invalid, isCleanRoomError } from "../errors.js";
import { rngStamp, type RngStamp } from "../rng.js";
import type { Lab } from "../session.js";
import { serializeTable } from "../cleanroom/serialize.js";
import { withMimeBundle } from "../display/bundle.js";
import { equalBytes } from "../crypto/primitives.js";
import { permits, type PurposeLabel } from "../purpose/labels.js";
import { defaultTaxonomy, type Taxonomy } from "../purpose/taxonomy.js";

export { defaultTaxonomy, Taxonomy, DEFAULT_ALIASES, isWithin, overlaps } from "../purpose/taxonomy.js";
export {
  makeLabel,
  combineLabels,
  permits,
  explainPermit,
  tagDataset,
  atLeastAsRestrictive,
  type PurposeLabel,
} from "../purpose/labels.js";
export { evaluatePurpose, verifyGrant, PurposeAuthority, type PurposeGrant, type PurposeDecision } from "../purpose/policy.js";
export { PurposeKeyService, GatedTableStore, unwrapAndOpen, deriveKek, type SealedDataset } from "../purpose/gate.js";
export { AuditLog, type AuditEntry, type AuditVerification } from "../purpose/audit.js";
export { reviewEntries, type MisuseReview } from "../purpose/review.js";
export { canonicalJson } from "../crypto/canonical.js";
export { sha256Canonical } from "../purpose/canonical.js";

/** One row of a purpose table: the data's allowed purposes and the query's purpose. */
export interface PurposeTableCase {
  data: string[];
  query: string;
  /** The outcome the seed states (checked, reported in `matches`). */
  expect?: "granted" | "denied";
}

/** The seed's table, exactly. */
export const SEED_PURPOSE_TABLE: readonly PurposeTableCase[] = Object.freeze([
  { data: ["ads", "measurement"], query: "ads", expect: "granted" },
  { data: ["ads", "measurement"], query: "research", expect: "denied" },
  { data: ["safety"], query: "ads", expect: "denied" },
  { data: ["safety"], query: "safety", expect: "granted" },
] as PurposeTableCase[]);

export interface PurposeTableRow {
  row: number;
  data: string[];
  /** Canonical allow tags the gate wrapped the data key for. */
  wrappedFor: string[];
  query: string;
  /** Canonical data use of the query. */
  queryUse: string | null;
  outcome: "granted" | "denied";
  code: string | null;
  reason: string;
  /** Bytes of plaintext the gate released (null when denied). */
  plaintextBytes: number | null;
  /** Released bytes equal what the owner uploaded (null when denied). */
  plaintextIntact: boolean | null;
  expected: "granted" | "denied" | null;
  matches: boolean | null;
}

export interface PurposeTableResult {
  owner: string;
  requester: { party: string; analyst: string };
  rows: PurposeTableRow[];
  /** True when every row with an `expect` matched it. */
  allMatch: boolean;
  rngStamp: RngStamp;
}

/**
 * Evaluate a purpose table live in `lab` (default: the seed's four rows). Each row uploads a
 * tiny dataset tagged with `data`, declares a grant for `query` and asks the room to authorize
 * the query — policy and encryption gate both. Audited like any notebook call.
 *
 * @example
 * const lab = openLab({ store: ":memory:", rng: { seed: "purpose" } });
 * purposeTable(lab).rows.map((r) => r.outcome) // ["granted", "denied", "denied", "granted"]
 */
export function purposeTable(
  lab: Lab,
  cases: readonly PurposeTableCase[] = SEED_PURPOSE_TABLE,
  opts: { owner?: string; requester?: { party: string; analyst: string } } = {},
): PurposeTableResult {
  if (!lab || typeof lab !== "object" || !("purpose" in lab)) invalid("lab", "a Lab from openLab", lab, "INPUT_INVALID");
  if (!Array.isArray(cases) || cases.length === 0 || cases.length > 64)
    invalid("cases", "1–64 rows { data: string[], query }", cases, "INPUT_INVALID");
  const owner = opts.owner ?? "retailer";
  const requester = opts.requester ?? { party: "advertiser", analyst: "analyst" };
  const room = lab.purpose;
  // the run number comes from the room's own state (its sealed datasets), not a module global:
  // per lab, and it survives a kernel restart without reusing a dataset id
  const used = new Set(room.store.list());
  let run = 1;
  while (used.has(`purpose-table-${run}-row-1`)) run++;
  const rows: PurposeTableRow[] = [];
  const grants: { party: string; dataset: string; purpose: string; expires: string }[] = [];
  cases.forEach((c, i) => {
    if (!c || !Array.isArray(c.data) || typeof c.query !== "string")
      invalid(`cases[${i}]`, "{ data: string[], query: string }", c, "INPUT_INVALID");
    const datasetId = `purpose-table-${run}-row-${i + 1}`;
    // a small stand-in dataset: what matters is that its bytes are sealed under the row's tags
    const bytes = serializeTable(aq().table({ segment: ["north", "south", "east", "west"], visits: [120 + i, 95, 143, 88] }) as never);
    const info = room.upload({ party: owner, analyst: "owner", datasetId, bytes, tags: { purposes: c.data } });
    let queryUse: string | null = null;
    try {
      queryUse = room.taxonomy.resolveUse(c.query);
    } catch {
      queryUse = null;
    }
    const base = { row: i + 1, data: [...c.data], wrappedFor: info.wrappedFor, query: c.query, queryUse, expected: c.expect ?? null };
    let out: PurposeTableRow;
    try {
      const grant = room.declarePurpose({ ...requester, purpose: c.query, justification: `purpose table row ${i + 1}` });
      grants.push({
        party: `${requester.party}/${requester.analyst}`,
        dataset: datasetId,
        purpose: grant.purpose,
        expires: grant.expiresAt,
      });
      const { tables, decision } = room.authorizeQuery({ grant, requester, purpose: c.query, inputs: [{ datasetId }] });
      const got = tables[datasetId]!;
      room.recordQuery({
        requester,
        purpose: decision.purpose,
        grantId: decision.grantId,
        templateHash: null,
        datasets: [datasetId],
        privacyCost: null,
        outcome: "granted",
      });
      out = {
        ...base,
        outcome: "granted",
        code: null,
        reason: decision.reason,
        plaintextBytes: got.length,
        plaintextIntact: equalBytes(got, bytes),
        matches: null,
      };
    } catch (e) {
      if (!isCleanRoomError(e)) throw e;
      out = {
        ...base,
        outcome: "denied",
        code: e.code,
        reason: e.message.replace(/^\[[A-Z_]+\] /, ""),
        plaintextBytes: null,
        plaintextIntact: null,
        matches: null,
      };
    }
    out.matches = c.expect === undefined ? null : out.outcome === c.expect;
    rows.push(out);
  });
  const result: PurposeTableResult = {
    owner,
    requester: { ...requester },
    rows,
    allMatch: rows.every((r) => r.matches !== false),
    rngStamp: rngStamp(lab.rng),
  };
  return withMimeBundle(result, (r) => ({
    kind: "purpose",
    version: 1,
    title: "Purpose table — evaluated live (policy + encryption gate)",
    ...r.rngStamp,
    grants: grants.map((g) => ({ ...g, status: "active" as const })),
    decisions: r.rows.map((x) => ({
      requester: `${r.requester.party}/${r.requester.analyst}`,
      purpose: x.query,
      dataset: `data [${x.data.join(", ")}]`,
      decision: x.outcome === "granted" ? ("allow" as const) : ("deny" as const),
      reason:
        `data [${x.data.join(", ")}] → ${x.outcome === "granted" ? `key released (${x.plaintextBytes} bytes)` : x.code}: ${x.reason}` +
        `${x.expected ? ` — seed says ${x.expected}${x.matches ? " ✓" : " ✗"}` : ""}`,
    })),
  }));
}

/**
 * Which of `purposes` each label permits: one row per purpose, one column per label
 * (true/false), for showing that a derived label is never looser than its inputs.
 *
 * @example
 * permitMatrix({ exposures: a, purchases: b, result: combineLabels(a, b) }, ["ads", "measurement", "research"])
 */
export function permitMatrix(
  labels: Record<string, PurposeLabel>,
  purposes: readonly string[],
  taxonomy: Taxonomy = defaultTaxonomy(),
): Array<Record<string, string | boolean>> {
  if (!labels || typeof labels !== "object" || Object.keys(labels).length === 0)
    invalid("labels", "{ name: PurposeLabel, ... }", labels, "INPUT_INVALID");
  if (!Array.isArray(purposes) || purposes.length === 0) invalid("purposes", "non-empty array of purpose names", purposes, "INPUT_INVALID");
  return purposes.map((p, i) => {
    const use = taxonomy.resolveUse(p, `purposes[${i}]`);
    const row: Record<string, string | boolean> = { purpose: p === use ? p : `${p} (${use})` };
    for (const [name, label] of Object.entries(labels)) {
      if (!Array.isArray(label?.allow))
        throw new CleanRoomError("INPUT_INVALID", `"labels.${name}" expected a PurposeLabel`, { field: `labels.${name}` });
      row[name] = permits(label, use);
    }
    return row;
  });
}
